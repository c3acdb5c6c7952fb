import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { DomainError } from '@app/contracts';
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

/** Stores a handler's answer in the handler's own transaction. */
export type RecordAnswer = (em: EntityManager, answer: Answer) => Promise<void>;

/** Raised inside a transaction whose key a concurrent request stored first: roll back, replay. */
class KeyTakenMeanwhile extends Error {}

/**
 * `Idempotency-Key` for creating POSTs (draft-ietf-httpapi-idempotency-key-header): the
 * first answer is stored with the change it made; a repeat with the same key and body gets
 * it back and changes nothing; the same key with another body is 422.
 */
@Injectable()
export class IdempotencyService {
  constructor(private readonly keys: IdempotencyRepository) {}

  /** {@link run} for a controller: sets the answer's status on the response and returns the body to send (nothing for a 204). */
  async respond(res: { status(code: number): unknown }, route: string, key: string | undefined, body: unknown, handler: (record: RecordAnswer | undefined) => Promise<Answer>): Promise<unknown> {
    const answer = await this.run(route, key, body, handler);
    res.status(answer.status);
    return answer.status === 204 ? undefined : answer.body;
  }

  /**
   * The handler calls `record` inside the transaction that makes its change, so the stored
   * answer and the change commit together: there is no moment at which one exists without
   * the other, whatever is killed when. Nothing is held while the handler runs (a claim may
   * long-poll); two concurrent requests with one key cannot both commit, and the loser
   * replays the winner's answer. An answer the handler does not record (a refusal, a claim
   * that found nothing) changed nothing and is not stored: a retry simply asks again.
   */
  async run(route: string, key: string | undefined, body: unknown, handler: (record: RecordAnswer | undefined) => Promise<Answer>): Promise<Answer> {
    if (key === undefined) return handler(undefined);
    const hash = this.hash(key, body);
    const stored = await this.keys.find(route, key);
    if (stored) return this.replay(stored, hash);
    try {
      return await handler(async (em, a) => {
        if (!(await this.keys.insertDone(route, key, hash, a.status, a.body, em))) throw new KeyTakenMeanwhile();
      });
    } catch (err) {
      // Whatever stopped this try (its twin's key, or a conflict its twin's change caused, such
      // as RUN_EXISTS): if the twin's answer is stored now, that is the answer.
      const winner = await this.keys.find(route, key).catch(() => null);
      if (!winner) throw err;
      return this.replay(winner, hash);
    }
  }

  private hash(key: string, body: unknown): string {
    if (!KEY.test(key)) throw new DomainError('VALIDATION_FAILED', 'Idempotency-Key must be 1-200 printable ASCII characters');
    return createHash('sha256').update(canonical(body)).digest('hex');
  }

  private replay(stored: StoredAnswer, hash: string): Answer {
    if (stored.requestHash !== hash) throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request body');
    return { status: stored.status, body: stored.response };
  }
}
