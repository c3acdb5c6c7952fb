import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DomainError } from '@app/contracts';
import { mapError } from '../http/error-mapping.js';
import { IdempotencyRepository } from '../repositories/index.js';

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
 * `Idempotency-Key` for creating POSTs (draft-ietf-httpapi-idempotency-key-header): the
 * first answer is stored; a repeat with the same key and body gets it back and changes
 * nothing; the same key with another body is 422; a repeat while the first is running is 409.
 */
@Injectable()
export class IdempotencyService {
  constructor(private readonly keys: IdempotencyRepository) {}

  /**
   * {@link run} for a controller: sets the answer's status on the response and returns the
   * body to send (nothing for a 204).
   */
  async respond(res: { status(code: number): unknown }, route: string, key: string | undefined, body: unknown, handler: () => Promise<Answer>): Promise<unknown> {
    const answer = await this.run(route, key, body, handler);
    res.status(answer.status);
    return answer.status === 204 ? undefined : answer.body;
  }

  async run(route: string, key: string | undefined, body: unknown, handler: () => Promise<Answer>): Promise<Answer> {
    if (key === undefined) return handler();
    if (!KEY.test(key)) throw new DomainError('VALIDATION_FAILED', 'Idempotency-Key must be 1-200 printable ASCII characters');
    const hash = createHash('sha256').update(canonical(body)).digest('hex');
    const stored = await this.keys.reserve(route, key, hash);
    if (stored) {
      if (stored.requestHash !== hash) throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request body');
      if (stored.state === 'in_progress') throw new DomainError('IDEMPOTENCY_IN_PROGRESS', 'a request with this Idempotency-Key is still being processed');
      return { status: stored.status ?? 200, body: stored.response };
    }
    let answer: Answer;
    try {
      answer = await handler();
    } catch (err) {
      const mapped = mapError(err);
      if (mapped.status >= 500) {
        await this.keys.release(route, key);
        throw err;
      }
      answer = { status: mapped.status, body: mapped.body };
    }
    await this.keys.complete(route, key, answer.status, answer.body);
    return answer;
  }
}
