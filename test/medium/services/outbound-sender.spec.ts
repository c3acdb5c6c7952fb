import { OutboundSender } from '../../../apps/supervisor/src/services/outbound-sender.js';
import { type HookTarget, freePort, startHookTarget } from '../../support/hook-target.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let sut: OutboundSender;
let target: HookTarget;
beforeAll(async () => {
  ctx = await createMediumContext();
  sut = ctx.get(OutboundSender);
  // `/warming` answers 503 twice, then 200; `/broken` always 500.
  target = await startHookTarget((req, nth) => {
    if (req.url.startsWith('/warming')) return { status: nth < 2 ? 503 : 200 };
    if (req.url.startsWith('/broken')) return { status: 500 };
    return {};
  });
});
afterAll(async () => {
  await target?.close();
  await ctx?.close();
});

describe('OutboundSender.probeHealth', () => {
  it('asks again until the service answers the expected status', async () => {
    const r = await sut.probeHealth({ url: `${target.url}/warming`, expectStatus: 200, timeoutS: 10 });
    expect(r).toMatchObject({ ok: true, responseStatus: 200, error: null, tries: 3 });
    expect(target.to('/warming').map((x) => x.method)).toEqual(['GET', 'GET', 'GET']);
    expect(target.to('/warming')[0].headers['idempotency-key']).toBeUndefined();
  });

  it('fails after timeout_s with the last reason, for a wrong status or a service that is not there', async () => {
    const broken = await sut.probeHealth({ url: `${target.url}/broken`, expectStatus: 200, timeoutS: 2 });
    expect(broken).toMatchObject({ ok: false, responseStatus: 500, error: 'unexpected status 500 (expected 200)' });
    expect(broken.durationMs).toBeGreaterThanOrEqual(1900);
    expect(broken.tries).toBeGreaterThanOrEqual(2);
    const down = await sut.probeHealth({ url: `http://127.0.0.1:${await freePort()}/health`, expectStatus: 200, timeoutS: 1 });
    expect(down).toMatchObject({ ok: false, responseStatus: null });
    expect(down.error).toMatch(/ECONNREFUSED/);
  });
});
