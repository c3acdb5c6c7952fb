import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` every `everyMs` until it returns something other than undefined (a probe that
 * throws counts as not yet: the thing waited for may be restarting), and returns that. Throws
 * "timed out waiting for <what>" after `timeoutMs`.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, { timeoutMs = 60_000, everyMs = 100 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
