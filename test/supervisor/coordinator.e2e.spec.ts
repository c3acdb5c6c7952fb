import { CoordinatorCycleTimesResponseSchema, CoordinatorServicesResponseSchema, ObserveServiceResponseSchema, RunResponseSchema } from '@app/contracts';
import { completeNext, http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/*
 * The coordinator's supervisor side (CONTRACT.md section 9): observing a service records its
 * stage and starts the one build or run that moves it on; never two at once for one service,
 * even when two coordinators observe it at the same moment; stage changes give cycle times.
 */

let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor();
});
afterAll(async () => sup?.close());

const observe = async (service: string, body: Record<string, unknown>) => {
  const r = await http(sup.url, 'POST', `/coordinator/services/${service}/observe`, body);
  expect(r.status).toBe(200);
  return ObserveServiceResponseSchema.parse(r.body);
};
const services = async () => CoordinatorServicesResponseSchema.parse((await http(sup.url, 'GET', '/coordinator/services')).body);
const getRun = async (runId: string) => RunResponseSchema.parse((await http(sup.url, 'GET', `/runs/${runId}`)).body);

describe('POST /coordinator/services/{service}/observe', () => {
  it('two coordinators observing a new service at once start one build, with the README intent and the service path', async () => {
    const body = { path: '/srv/svc-spec', stage: 'needs_spec', intent: 'A tiny quotes service.', approval_mode: 'auto' };
    const answers = await Promise.all([observe('svc-spec', body), observe('svc-spec', body), observe('svc-spec', body)]);
    expect(answers.filter((a) => a.started)).toHaveLength(1);
    const ids = new Set(answers.map((a) => a.active_run_id));
    expect(ids.size).toBe(1);
    const buildId = [...ids][0]!;
    expect(buildId).toBe('svc-spec');
    const status = await http(sup.url, 'GET', `/executor/builds/${buildId}/status`);
    expect(status.status).toBe(200);
    expect((await getRun(buildId)).repo_url).toBe('/srv/svc-spec');
    // Seen again while the build is going: nothing new.
    expect(await observe('svc-spec', body)).toMatchObject({ stage: 'needs_spec', active_run_id: buildId, started: false });
  });

  it('needs_tests starts a tests run for a tester; a cancelled run is replaced; a stage change is timed', async () => {
    const body = { path: '/srv/svc-tests', stage: 'needs_tests', test_command: 'npm test' };
    const first = await observe('svc-tests', body);
    expect(first.started).toBe(true);
    const run = await getRun(first.active_run_id!);
    expect(run.repo_url).toBe('/srv/svc-tests');
    expect(run.phases.map((p) => [p.phase_id, p.task_category, p.requires, p.waiting_for_capabilities])).toEqual([['write-tests', 'tests', ['tester'], ['tester']]]);

    expect((await http(sup.url, 'POST', `/runs/${run.run_id}/cancel`, {})).status).toBe(200);
    const second = await observe('svc-tests', body);
    expect(second.started).toBe(true);
    expect(second.active_run_id).not.toBe(first.active_run_id);

    await new Promise((r) => setTimeout(r, 1100));
    const moved = await observe('svc-tests', { ...body, stage: 'tests_failing' });
    // The run that is still going stays the one active run.
    expect(moved).toMatchObject({ stage: 'tests_failing', active_run_id: second.active_run_id, started: false });
    const svc = (await services()).find((s) => s.service === 'svc-tests')!;
    expect(svc).toMatchObject({ path: '/srv/svc-tests', stage: 'tests_failing', active_run_id: second.active_run_id });
    expect(svc.cycle_times.needs_tests).toBeGreaterThanOrEqual(1);
    expect(svc.cycle_times.tests_failing).toBeUndefined();

    const stats = CoordinatorCycleTimesResponseSchema.parse((await http(sup.url, 'GET', '/coordinator/cycle_times')).body);
    expect(stats.needs_tests.count).toBe(1);
    expect(stats.needs_tests.median_s).toBeGreaterThanOrEqual(1);
    const metrics = (await http(sup.url, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/autopack_coordinator_stage_seconds_count\{stage="needs_tests"\} 1/);
  });

  it('a run that just succeeded gets one pass to be promoted before the next one starts', async () => {
    const body = { path: '/srv/svc-fix', stage: 'tests_failing', test_command: 'make test' };
    const first = await observe('svc-fix', body);
    const run = await getRun(first.active_run_id!);
    expect(run.phases.map((p) => [p.phase_id, p.requires, p.ci?.command])).toEqual([['fix-tests', ['builder'], 'make test']]);
    await completeNext(sup.url, run.run_id);
    expect((await getRun(run.run_id)).state).toBe('DONE_SUCCESS');

    // Still failing on main (not promoted yet): the run is cleared, nothing new this pass.
    expect(await observe('svc-fix', body)).toMatchObject({ active_run_id: null, started: false });
    // Still failing on the next pass: a new fix run.
    const again = await observe('svc-fix', body);
    expect(again.started).toBe(true);
    expect(again.active_run_id).not.toBe(run.run_id);
  });

  it('reports the cycle times: per stage across services, and per service', async () => {
    const report = (await http(sup.url, 'GET', '/reports/cycle_times')).body;
    const stats = CoordinatorCycleTimesResponseSchema.parse((await http(sup.url, 'GET', '/coordinator/cycle_times')).body);
    expect(report.stages).toEqual(stats);
    expect(Object.keys(report.stages).length).toBeGreaterThan(0);
    const line = await services();
    expect(report.services).toEqual(line.map((s) => ({ service: s.service, stage: s.stage, stage_since: s.stage_since, cycle_times: s.cycle_times })));
  });

  it('rejects a bad body and a bad service name', async () => {
    expect((await http(sup.url, 'POST', '/coordinator/services/svc-x/observe', { path: '/x', stage: 'nowhere' })).status).toBe(422);
    expect((await http(sup.url, 'POST', '/coordinator/services/..bad/observe', { path: '/x', stage: 'needs_spec' })).status).toBe(404);
  });
});

describe('ready_for_deploy', () => {
  it('starts nothing without a deploy hook: there is nowhere to deploy to', async () => {
    expect(await observe('svc-ready', { path: '/srv/svc-ready', stage: 'ready_for_deploy' })).toMatchObject({ stage: 'ready_for_deploy', active_run_id: null, started: false });
  });

  it('with a deploy hook configured, starts a deploy-only build: promotion, deploy and register, the first four steps skipped', async () => {
    const hooked = await startTestSupervisor({ hooks: { deploy: { url: 'http://127.0.0.1:9/deploy' } } });
    try {
      const r = await http(hooked.url, 'POST', '/coordinator/services/svc-deploy/observe', { path: '/srv/svc-deploy', stage: 'ready_for_deploy' });
      expect(r.status).toBe(200);
      const answer = ObserveServiceResponseSchema.parse(r.body);
      expect(answer).toMatchObject({ started: true, active_run_id: 'svc-deploy' });
      const status = (await http(hooked.url, 'GET', '/executor/builds/svc-deploy/status')).body;
      expect(status.phases.map((p: { status: string }) => p.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped', 'pending', 'pending']);
      const run = RunResponseSchema.parse((await http(hooked.url, 'GET', '/runs/svc-deploy')).body);
      expect(run.tiers.map((t) => t.tier_id)).toEqual(['build-promote', 'build-deploy']);
      expect(run.phases.map((p) => p.phase_id)).toEqual(['promote', 'deploy']);
      expect(run.repo_url).toBe('/srv/svc-deploy');
    } finally {
      await hooked.close();
    }
  });
});
