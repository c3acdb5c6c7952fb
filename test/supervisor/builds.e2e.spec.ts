import { BuildStatusResponseSchema, ClaimResponseSchema, StepResultResponseSchema } from '@app/contracts';
import { claimNext, http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/*
 * The supervisor's side of a droplet build, driven over HTTP as an executor would: the
 * planning step's claim carries the build, a plan is validated again before any phase is
 * queued (a refused one is a failed attempt naming every problem), and each step's phase is
 * of its kind. No executor, no LLM: the reports are made by hand.
 */

let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor();
});
afterAll(async () => sup?.close());

const plan = (over: Record<string, unknown> = {}) => ({
  tiers: [{ tier_id: 'svc', tier_index: 0, name: 'Service' }],
  phases: [{ phase_id: 'api', phase_index: 0, tier_id: 'svc', name: 'API', task_category: 'feature_scaffolding', scope: { paths: ['src/'] }, ci: { command: 'npm test' } }],
  ...over,
});

describe('a build as the supervisor runs it', () => {
  it('answers 202 with the build, shows six pending steps, and gives the planning step with its build context', async () => {
    const accepted = await http(sup.url, 'POST', '/executor/build-droplet', { architect_intent: 'An API that says hello', droplet_id: 'sv-1', droplet_name: 'hello api' });
    expect(accepted.status).toBe(202);
    expect(accepted.body.build_id).toBe('sv-1');
    expect(Date.parse(accepted.body.estimated_completion)).toBeGreaterThan(Date.now());

    const status = BuildStatusResponseSchema.parse((await http(sup.url, 'GET', '/executor/builds/sv-1/status')).body);
    expect(status.phases.map((p) => [p.step, p.name, p.status])).toEqual([
      [1, 'SPEC Generation', 'pending'],
      [2, 'Package', 'pending'],
      [3, 'Build', 'pending'],
      [4, 'Verify', 'pending'],
      [5, 'Deploy', 'pending'],
      [6, 'Register', 'pending'],
    ]);
    expect(status.estimated_time_remaining).toBeGreaterThan(0);

    const claim = ClaimResponseSchema.parse(await claimNext(sup.url, 'sv-1'));
    expect(claim.phase).toMatchObject({ phase_id: 'spec', kind: 'plan' });
    expect(claim.max_attempts).toBe(10);
    expect(claim.build).toMatchObject({ build_id: 'sv-1', intent: 'An API that says hello', droplet_name: 'hello api', plan: null, promoted_from: null });
    expect(claim.build!.taken_ids.phase_ids).toEqual(expect.arrayContaining(['spec', 'package', 'verify', 'promote', 'deploy']));
    expect((await http(sup.url, 'GET', '/executor/builds/sv-1/status')).body.phases[0].status).toBe('running');
  });
});

describe('plan validation on the supervisor', () => {
  it('a refused plan is a failed attempt with every problem as feedback; an accepted one adds its tiers and phases once', async () => {
    expect((await http(sup.url, 'POST', '/executor/build-droplet', { architect_intent: 'Another API', droplet_id: 'sv-2' })).status).toBe(202);
    const first = await claimNext(sup.url, 'sv-2');
    const bad = plan({
      phases: [
        { phase_id: 'verify', phase_index: 0, tier_id: 'svc', name: 'Clash', task_category: 'feature_scaffolding', ci: { command: 'npm test' } },
        { phase_id: 'x', phase_index: 1, tier_id: 'nowhere', name: 'Lost', task_category: 'no_such_category' },
      ],
    });
    // A plan outside the tool's schema (a path escaping the repository) is refused as input: 422, nothing recorded.
    const malformed = plan({ phases: [{ phase_id: 'a', phase_index: 0, tier_id: 'svc', name: 'A', scope: { paths: ['../outside'] } }] });
    expect((await http(sup.url, 'POST', '/runs/sv-2/phases/spec/step_result', { kind: 'plan', lease_token: first.lease_token, plan: malformed })).status).toBe(422);
    const refused = await http(sup.url, 'POST', '/runs/sv-2/phases/spec/step_result', { kind: 'plan', lease_token: first.lease_token, plan: bad });
    expect(refused.status).toBe(200);
    const r = StepResultResponseSchema.parse(refused.body);
    expect({ accepted: r.accepted, state: r.phase_state }).toEqual({ accepted: false, state: 'QUEUED' });
    const problems = r.problems!.join('\n');
    expect(problems).toMatch(/verify.*already used by the run/);
    expect(problems).toMatch(/nowhere/);
    expect(problems).toMatch(/no_such_category/);

    const run = (await http(sup.url, 'GET', '/runs/sv-2')).body;
    expect(run.phases.map((p: { phase_id: string }) => p.phase_id)).not.toContain('x');
    const second = await claimNext(sup.url, 'sv-2');
    expect(second.phase_id).toBe('spec');
    expect(second.previous_attempts).toHaveLength(1);
    expect(second.previous_attempts[0].feedback).toMatch(/no_such_category/);

    // A promotion report on the planning phase is refused before anything is written.
    const wrongKind = await http(sup.url, 'POST', '/runs/sv-2/phases/spec/step_result', { kind: 'promoted', lease_token: second.lease_token, from: null, to: 'a'.repeat(40) });
    expect(wrongKind.status).toBe(422);

    const ok = StepResultResponseSchema.parse((await http(sup.url, 'POST', '/runs/sv-2/phases/spec/step_result', { kind: 'plan', lease_token: second.lease_token, plan: plan() })).body);
    expect(ok).toMatchObject({ accepted: true, phase_state: 'EXECUTING' });
    // Reported again (a resumed planning step): accepted, nothing added twice.
    expect(StepResultResponseSchema.parse((await http(sup.url, 'POST', '/runs/sv-2/phases/spec/step_result', { kind: 'plan', lease_token: second.lease_token, plan: plan() })).body).accepted).toBe(true);
    const after = (await http(sup.url, 'GET', '/runs/sv-2')).body;
    expect(after.phases.filter((p: { phase_id: string }) => p.phase_id === 'api')).toHaveLength(1);
    expect(after.tiers.map((t: { tier_id: string; tier_index: number }) => [t.tier_id, t.tier_index])).toEqual([
      ['build-spec', 0],
      ['build-package', 1],
      ['svc', 2],
      ['build-verify', 9000],
      ['build-promote', 9001],
      ['build-deploy', 9002],
    ]);

    // Complete the planning phase: the package step's claim carries the accepted plan.
    expect((await http(sup.url, 'POST', '/runs/sv-2/phases/spec/update_status', { lease_token: second.lease_token, state: 'COMPLETE', commit_sha: 'b'.repeat(40) })).status).toBe(200);
    const pkg = ClaimResponseSchema.parse(await claimNext(sup.url, 'sv-2'));
    expect(pkg.phase).toMatchObject({ phase_id: 'package', kind: 'package' });
    expect(pkg.build!.plan).toEqual(plan());
    const steps = (await http(sup.url, 'GET', '/executor/builds/sv-2/status')).body.phases.map((p: { status: string }) => p.status);
    expect(steps).toEqual(['completed', 'running', 'pending', 'pending', 'pending', 'pending']);
  });

  it('refuses bad build requests with a clear 4xx', async () => {
    const missing = await http(sup.url, 'POST', '/executor/build-droplet', { droplet_id: 'sv-bad' });
    expect(missing.status).toBe(422);
    const unknownMode = await http(sup.url, 'POST', '/executor/build-droplet', { architect_intent: 'x', approval_mode: 'sometimes' });
    expect(unknownMode.status).toBe(422);
    expect((await http(sup.url, 'GET', '/executor/builds/nope/status')).status).toBe(404);
    expect((await http(sup.url, 'POST', '/executor/builds/nope/approve', { approved: true })).status).toBe(404);
    expect((await http(sup.url, 'POST', '/executor/builds/sv-1/approve', { approved: true })).status).toBe(409);
    expect((await http(sup.url, 'POST', '/executor/builds/sv-1/retry', {})).status).toBe(409);
    const caps = (await http(sup.url, 'GET', '/executor/capabilities')).body;
    expect(caps).toMatchObject({ approval_modes: ['auto', 'checkpoints', 'final'], max_concurrent_builds: 3, providers: ['openai', 'anthropic'] });
    expect(Object.keys(caps.models.openai)).toEqual(expect.arrayContaining(['builder', 'auditor', 'planner']));
  });
});
