import { setTimeout as sleep } from 'node:timers/promises';
import { MetricsService } from '../../../apps/supervisor/src/services/metrics.service.js';
import { NotificationHub } from '../../../apps/supervisor/src/services/notification-hub.js';
import { CLAIMABLE_CHANNEL } from '../../../apps/supervisor/src/services/progress.service.js';
import { waitFor } from '../../support/wait.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let hub: NotificationHub;
beforeAll(async () => {
  // Lifecycle hooks on: the hub opens its LISTEN connection as on start. A long lease keeps
  // the sweeper's timer (started by the same hooks) out of the way.
  ctx = await createMediumContext({ init: true, config: { leaseSeconds: 3600 } });
  hub = ctx.get(NotificationHub);
});
afterAll(() => ctx?.close());

/** A NOTIFY as the services send it on commit, from another connection. */
const notify = (payload: string) => ctx.db.query('SELECT pg_notify($1, $2)', [CLAIMABLE_CHANNEL, payload]);

/** The hub's connection: the one whose last statement was LISTEN. */
const listening = `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`;

async function wakeups(reason: string): Promise<number> {
  const metric = await ctx.get(MetricsService).claimWakeups.get();
  return metric.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('NotificationHub', () => {
  it('wakes a waiter on a NOTIFY for its run, on an empty payload, and any-run waiters on every run', async () => {
    const before = await wakeups('notify');
    const forA = hub.waitForClaimable(10_000, 'run-a');
    const forAny = hub.waitForClaimable(10_000);
    await notify('run-a');
    expect(await forA).toBe('notify');
    expect(await forAny).toBe('notify');
    const everyone = hub.waitForClaimable(10_000, 'run-z');
    await notify('');
    expect(await everyone).toBe('notify');
    expect(await wakeups('notify')).toBe(before + 3);
    expect((await ctx.get(MetricsService).claimsWaiting.get()).values[0].value).toBe(0);
  });

  it("does not wake a waiter for another run's NOTIFY: its timer ends the wait", async () => {
    const waiting = hub.waitForClaimable(400, 'run-b');
    await notify('run-other');
    expect(await waiting).toBe('timeout');
  });

  it('calls subscribers on every NOTIFY for their run until they unsubscribe', async () => {
    const seen: string[] = [];
    const stop = hub.subscribe('run-c', () => seen.push('c'));
    await notify('run-c');
    await notify('run-d');
    await notify('run-c');
    await waitFor('two notifications for run-c', async () => (seen.length === 2 ? true : undefined), { timeoutMs: 5000 });
    stop();
    // NOTIFYs arrive in commit order: once the marker is in, the one for run-c was delivered too.
    const marker = hub.waitForClaimable(5000, 'run-marker');
    await notify('run-c');
    await notify('run-marker');
    expect(await marker).toBe('notify');
    expect(seen).toEqual(['c', 'c']);
  });

  it('comes back after losing its connection and wakes every waiter once, since it may have missed a NOTIFY', async () => {
    const waiting = hub.waitForClaimable(30_000, 'run-e');
    const killed = await ctx.db.query<{ ok: boolean }>(`SELECT pg_terminate_backend(pid) AS ok FROM (${listening}) l`);
    expect(killed).toEqual([{ ok: true }]);
    expect(await waiting).toBe('notify');
    // Listening again: a NOTIFY reaches a new waiter.
    await waitFor('the LISTEN connection again', async () => ((await ctx.db.query(listening)).length === 1 ? true : undefined), { timeoutMs: 10_000 });
    const next = hub.waitForClaimable(10_000, 'run-f');
    await notify('run-f');
    expect(await next).toBe('notify');
  });

  it('ends every wait when the module shuts down', async () => {
    const own = await createMediumContext({ init: true, config: { leaseSeconds: 3600 } });
    const waiting = own.get(NotificationHub).waitForClaimable(30_000, 'run-g');
    await sleep(10);
    await own.close();
    expect(await waiting).toBe('shutdown');
  });
});
