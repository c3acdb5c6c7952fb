import { createHash } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { DomainError } from '@app/contracts';
import { mapError } from '../http/error-mapping.js';
import { IdempotencyRepository, type StoredAnswer } from '../repositories/index.js';

/** An HTTP answer: status and body. */
export interface Answer {
  status: number;
  body: unknown;
}

const KEY = /^[\x21-\x7e]{1,200}$/;

/** Canonical JSON (sorted keys), so the same body always hashes the same. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * A reservation older than this is an orphan (its request's process died, or the database
 * went away before the key could be released) and a retry may take it over. The routes that
 * reserve answer in milliseconds; the long-polling claim does not reserve at all.
 */
const STALE_RESERVATION_SECONDS = 30;

/** Stores a handler's answer in the handler's own transaction. */
export type RecordAnswer = (em: EntityManager, answer: Answer) => Promise<void>;

/** Raised inside a transaction whose key a concurrent request stored first: roll back, replay. */
class KeyTakenMeanwhile extends Error {}

/**
 * `Idempotency-Key` for creating POSTs (draft-ietf-httpapi-idempotency-key-header): the
 * first answer is stored; a repeat with the same key and body gets it back and changes
 * nothing; the same key with another body is 422; a repeat while the first is running is 409.
 */
@Injectable()
export class IdempotencyService {
  private readonly log = new Logger('Idempotency');

  constructor(private readonly keys: IdempotencyRepository) {}

  /**
   * {@link run} for a controller: sets the answer's status on the response and returns the
   * body to send (nothing for a 204).
   */
  async respond(res: { status(code: number): unknown }, route: string, key: string | undefined, body: unknown, handler: () => Promise<Answer>): Promise<unknown> {
    return IdempotencyService.send(res, await this.run(route, key, body, handler));
  }

  /** {@link runAtomic} for a controller, like {@link respond}. */
  async respondAtomic(res: { status(code: number): unknown }, route: string, key: string | undefined, body: unknown, handler: (record: RecordAnswer | undefined) => Promise<Answer>): Promise<unknown> {
    return IdempotencyService.send(res, await this.runAtomic(route, key, body, handler));
  }

  private static send(res: { status(code: number): unknown }, answer: Answer): unknown {
    res.status(answer.status);
    return answer.status === 204 ? undefined : answer.body;
  }

  /**
   * Reserve, run, store: for handlers that commit in one short step. A request that fails
   * unexpectedly releases its key so a retry can run it; if even that fails (the database is
   * gone), the reservation goes stale and a retry takes it over.
   */
  async run(route: string, key: string | undefined, body: unknown, handler: () => Promise<Answer>): Promise<Answer> {
    if (key === undefined) return handler();
    const hash = this.hash(key, body);
    const stored = await this.keys.reserve(route, key, hash, STALE_RESERVATION_SECONDS);
    if (stored) return this.replay(stored, hash);
    let answer: Answer;
    try {
      answer = await handler();
    } catch (err) {
      const mapped = mapError(err);
      if (mapped.status >= 500) {
        await this.release(route, key);
        throw err;
      }
      answer = { status: mapped.status, body: mapped.body };
    }
    await this.keys.complete(route, key, answer.status, answer.body);
    return answer;
  }

  /**
   * For a handler that may wait long before it changes anything (the long-polling claim): no
   * reservation is held while it waits. The handler calls `record` inside the transaction
   * that makes its change, so the stored answer and the change commit together; two
   * concurrent requests with one key cannot both commit, and the loser replays the winner's
   * answer. An answer the handler does not record (a claim that found nothing) changed
   * nothing and is not stored: a retry simply asks again.
   */
  async runAtomic(route: string, key: string | undefined, body: unknown, handler: (record: RecordAnswer | undefined) => Promise<Answer>): Promise<Answer> {
    if (key === undefined) return handler(undefined);
    const hash = this.hash(key, body);
    const stored = await this.keys.find(route, key);
    if (stored) return this.replay(stored, hash);
    try {
      return await handler(async (em, a) => {
        if (!(await this.keys.insertDone(route, key, hash, a.status, a.body, em))) throw new KeyTakenMeanwhile();
      });
    } catch (err) {
      if (!(err instanceof KeyTakenMeanwhile)) throw err;
      const winner = await this.keys.find(route, key);
      if (!winner) throw err;
      return this.replay(winner, hash);
    }
  }

  /**
   * Frees the key of a request that failed unexpectedly. When the database itself is what
   * failed, keeps trying in the background for as long as the reservation would take to go
   * stale, so the client's retry usually need not wait that long.
   */
  private async release(route: string, key: string): Promise<void> {
    const deadline = Date.now() + STALE_RESERVATION_SECONDS * 1000;
    const attempt = async (): Promise<void> => {
      try {
        await this.keys.release(route, key);
      } catch (err) {
        if (Date.now() + 1000 >= deadline) {
          this.log.warn(`could not release an Idempotency-Key of ${route} (${(err as Error).message}); it goes stale in ${STALE_RESERVATION_SECONDS} s`);
          return;
        }
        setTimeout(() => void attempt(), 1000).unref();
      }
    };
    await attempt();
  }

  private hash(key: string, body: unknown): string {
    if (!KEY.test(key)) throw new DomainError('VALIDATION_FAILED', 'Idempotency-Key must be 1-200 printable ASCII characters');
    return createHash('sha256').update(canonical(body)).digest('hex');
  }

  private replay(stored: StoredAnswer, hash: string): Answer {
    if (stored.requestHash !== hash) throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request body');
    if (stored.state === 'in_progress') throw new DomainError('IDEMPOTENCY_IN_PROGRESS', 'a request with this Idempotency-Key is still being processed');
    return { status: stored.status ?? 200, body: stored.response };
  }
}
