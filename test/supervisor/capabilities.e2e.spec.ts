import { ExecutorListResponseSchema, RunResponseSchema } from '@app/contracts';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/*
 * Capabilities (CONTRACT.md section 9): a phase that requires some is handed only to a claim
 * whose capabilities cover them, a phase no live executor can take says what it waits for,
 * and GET /executors shows who claimed, with what, and what they hold.
 */

let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor({ leaseSeconds: 20 });
});
afterAll(async () => sup?.close());

const plan = (runId: string) => ({
  run: { run_id: runId, max_parallel_phases: 2 },
  tiers: [{ tier_id: 't1', tier_index: 0, name: 'One' }],
  phases: [
    { phase_id: 'write-tests', phase_index: 0, tier_id: 't1', name: 'Write tests', task_category: 'tests', requires: ['tester'] },
    { phase_id: 'ship', phase_index: 1, tier_id: 't1', name: 'Ship it', task_category: 'feature_scaffolding', requires: ['devops', 'builder'] },
  ],
});
const claim = (executorId: string, capabilities?: unknown, runId = 'cap-1') =>
  http(sup.url, 'POST', '/phases/claim', { executor_id: executorId, run_id: runId, ...(capabilities === undefined ? {} : { capabilities }) });

describe('capabilities', () => {
  it('hands a phase only to a claim whose capabilities cover its requires, and says what a phase waits for', async () => {
    expect((await http(sup.url, 'POST', '/runs/start', plan('cap-1'))).status).toBe(201);

    // Nobody has claimed yet: both phases wait for what they require.
    let run = RunResponseSchema.parse((await http(sup.url, 'GET', '/runs/cap-1')).body);
    expect(run.phases.map((p) => [p.phase_id, p.requires, p.waiting_for_capabilities])).toEqual([
      ['write-tests', ['tester'], ['tester']],
      ['ship', ['builder', 'devops'], ['builder', 'devops']],
    ]);

    // A builder (the default, no capabilities named) gets nothing; a tester gets the tests phase.
    expect((await claim('b-1')).status).toBe(204);
    expect((await claim('b-2', ['builder'])).status).toBe(204);
    const tester = await claim('t-1', ['tester']);
    expect(tester.status).toBe(200);
    expect(tester.body.phase).toMatchObject({ phase_id: 'write-tests', requires: ['tester'] });

    // A live builder and a live tester exist, but nobody has devops: "ship" waits for devops only.
    run = RunResponseSchema.parse((await http(sup.url, 'GET', '/runs/cap-1')).body);
    expect(run.phases.find((p) => p.phase_id === 'ship')!.waiting_for_capabilities).toEqual(['devops']);

    // The older object form names capabilities as roles.
    const devops = await claim('d-1', { providers: ['openai'], roles: ['builder', 'devops'] });
    expect(devops.status).toBe(200);
    expect(devops.body.phase.phase_id).toBe('ship');

    const executors = ExecutorListResponseSchema.parse((await http(sup.url, 'GET', '/executors')).body);
    const byId = Object.fromEntries(executors.map((e) => [e.executor_id, e]));
    expect(byId['b-1']).toMatchObject({ capabilities: ['builder'], status: 'active', current: null });
    expect(byId['t-1']).toMatchObject({ capabilities: ['tester'], status: 'active', current: { run_id: 'cap-1', phase_id: 'write-tests' } });
    expect(byId['d-1']).toMatchObject({ capabilities: ['builder', 'devops'], current: { run_id: 'cap-1', phase_id: 'ship' } });

    // Completed work is counted per executor.
    const done = await http(sup.url, 'POST', '/runs/cap-1/phases/write-tests/update_status', { lease_token: tester.body.lease_token, state: 'COMPLETE', commit_sha: 'a'.repeat(40) });
    expect(done.status).toBe(200);
    const after = ExecutorListResponseSchema.parse((await http(sup.url, 'GET', '/executors')).body).find((e) => e.executor_id === 't-1')!;
    expect(after).toMatchObject({ phases_completed: 1, phases_failed: 0, current: null });
  });

  it('refuses malformed capabilities and requires with a clear 422', async () => {
    expect((await claim('x', ['Not A Capability'])).status).toBe(422);
    const bad = plan('cap-bad');
    bad.phases[0].requires = ['UPPER'];
    expect((await http(sup.url, 'POST', '/runs/start', bad)).status).toBe(422);
  });
});
