import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { stateSnapshot } from '../support/database.js';

/**
 * The original Autopack's clients are Python: an optional field left at `None` arrives as
 * `null`. The Autopack-compatible routes take such a null as "absent". Strictness stays: a
 * null in a required field, unknown fields and wrong types are still 422.
 */
let sup: TestSupervisor;
const RUN = 'py-run';
const call = (method: string, path: string, body?: unknown) => http(sup.url, method, path, body);

const snapshot = () => stateSnapshot(sup.db);

beforeAll(async () => {
  sup = await startTestSupervisor();
});
afterAll(async () => sup?.close());

/** `RunStartRequest{run: RunCreate, tiers: TierCreate[], phases: PhaseCreate[]}` as a Python client sends it: every optional field None. */
const runStart = (runId: string) => ({
  run: {
    run_id: runId,
    safety_profile: null,
    run_scope: null,
    token_cap: null,
    max_phases: null,
    max_duration_minutes: null,
    // Fields this supervisor added, left unset the same way.
    cost_cap_usd: null,
    approval_mode: null,
    base_branch: null,
    repo_url: null,
    project_id: null,
    ci: null,
    protected_paths: null,
    max_parallel_phases: null,
    schedule_debt_cleanup: null,
  },
  tiers: [
    { tier_id: 't1', tier_index: 0, name: 'Foundation', description: null },
    { tier_id: 't2', tier_index: 1, name: 'Features', description: 'second' },
  ],
  phases: [
    { phase_id: 'p1', phase_index: 0, tier_id: 't1', name: 'One', description: null, task_category: null, complexity: null, builder_mode: null, scope: null },
    {
      phase_id: 'p2',
      phase_index: 1,
      tier_id: 't1',
      name: 'Two',
      description: 'd',
      task_category: 'docs',
      complexity: null,
      builder_mode: null,
      scope: { paths: null, read_only_context: null },
      acceptance_criteria: null,
      ci: { command: 'true', timeout_s: null },
      allow_mass_deletion: null,
      allow_mass_addition: null,
    },
    { phase_id: 'p3', phase_index: 2, tier_id: 't2', name: 'Three', description: null, task_category: null, complexity: null, builder_mode: null, scope: null },
  ],
});

async function claim(): Promise<string> {
  const c = await call('POST', '/phases/claim', { executor_id: 'py', run_id: RUN });
  expect(c.status).toBe(200);
  return c.body.lease_token;
}
const P = (phase: string) => `/runs/${RUN}/phases/${phase}`;

/** The original's BuilderSuggestedIssue with its optional description None. */
const suggestedIssue = { issue_key: 'missing_docstring', severity: 'minor', source: null, category: 'style', evidence_refs: null, description: null, location: null };

describe('original Autopack request bodies with null optional fields', () => {
  it('POST /runs/start -> 201, nulls taken as absent (defaults apply)', async () => {
    const r = await call('POST', '/runs/start', runStart(RUN));
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ run_id: RUN, safety_profile: 'normal', token_cap: 5_000_000, repo_url: null });
    expect(r.body.tiers[0]).toMatchObject({ tier_id: 't1', description: null });
    expect(r.body.phases[0]).toMatchObject({ phase_id: 'p1', description: null, task_category: null, complexity: null, builder_mode: null, scope: null });
    expect(r.body.phases[1]).toMatchObject({ phase_id: 'p2', acceptance_criteria: [], ci: { command: 'true' } });
    expect(r.body.phases[1].ci.timeout_s).toBeUndefined();
  });

  it('builder_result, record_issue, auditor_request and auditor_result -> 200', async () => {
    const lease = await claim();
    // BuilderResult{phase_id, run_id, patch_content?, files_changed, ..., suggested_issues, status, notes} + run_type?, allowed_paths.
    const built = await call('POST', `${P('p1')}/builder_result`, {
      lease_token: lease,
      phase_id: 'p1',
      run_id: RUN,
      patch_content: null,
      files_changed: ['docs/a.md'],
      lines_added: 3,
      lines_removed: 0,
      builder_attempts: 1,
      tokens_used: 0,
      duration_minutes: 0.0,
      probe_results: null,
      suggested_issues: [suggestedIssue],
      status: 'success',
      notes: null,
      run_type: null,
      allowed_paths: null,
      // This supervisor's additions, unset.
      failure_reason: null,
      feedback: null,
      edits_hash: null,
      usage: null,
      llm_calls: null,
      commit_sha: null,
    });
    expect(built.status).toBe(200);
    expect(built.body.phase_state).toBe('EXECUTING');

    // Sent with run_type and allowed_paths set, the original's fields are accepted too.
    const again = await call('POST', `${P('p1')}/builder_result`, { lease_token: lease, status: 'success', files_changed: null, suggested_issues: null, lines_added: null, lines_removed: null, tokens_used: null, run_type: 'project_build', allowed_paths: ['docs/'] });
    expect(again.status).toBe(200);

    const recorded = await call('POST', `${P('p1')}/record_issue`, {
      lease_token: lease,
      issue_key: 'flaky_test',
      severity: 'major',
      source: null,
      category: 'test',
      task_category: null,
      complexity: null,
      description: null,
      location: null,
      evidence_refs: null,
    });
    expect(recorded.status).toBe(200);

    // AuditorRequest{phase_id, run_id, tier_id, builder_result?, failure_context, review_focus, auditor_profile?}.
    const gate = await call('POST', `${P('p1')}/auditor_request`, {
      lease_token: lease,
      phase_id: 'p1',
      run_id: RUN,
      tier_id: null,
      builder_result: null,
      failure_context: null,
      review_focus: null,
      auditor_profile: null,
      // null where null has a meaning of its own (no exit code) keeps it.
      ci: { passed: false, exit_code: null, duration_seconds: null, output_tail: null },
    });
    expect(gate.status).toBe(200);
    expect(gate.body.phase_state).toBe('GATE');

    // AuditorResult{phase_id, run_id, review_notes, issues_found, suggested_patches, auditor_attempts, tokens_used, recommendation, confidence}.
    const audited = await call('POST', `${P('p1')}/auditor_result`, {
      lease_token: lease,
      phase_id: 'p1',
      run_id: RUN,
      review_notes: null,
      issues_found: [suggestedIssue],
      suggested_patches: null,
      auditor_attempts: null,
      tokens_used: null,
      recommendation: 'approve',
      confidence: null,
      quality_level: null,
      commit_sha: null,
      feedback: null,
      edits_hash: null,
      usage: null,
      llm_calls: null,
    });
    expect(audited.status).toBe(200);
    expect(audited.body).toMatchObject({ phase_state: 'COMPLETE', recommendation: 'approve' });
    const run = (await call('GET', `/runs/${RUN}`)).body;
    expect(run.phases[0]).toMatchObject({ state: 'COMPLETE', files_changed: [], lines_added: 0 });
  });

  it('update_status -> 200', async () => {
    const lease = await claim();
    // PhaseStatusUpdate{state, builder_attempts?, tokens_used?, minor_issues_count?, major_issues_count?} + quality_level?, quality_blocked?.
    const nulls = { builder_attempts: null, tokens_used: null, minor_issues_count: null, major_issues_count: null, quality_level: null, quality_blocked: null, failure_reason: null, feedback: null, edits_hash: null, commit_sha: null, ci_passed: null, usage: null, llm_calls: null, run_id: null, phase_id: null };
    const gate = await call('POST', `${P('p2')}/update_status`, { lease_token: lease, state: 'GATE', ...nulls });
    expect(gate.status).toBe(200);
    expect(gate.body.phase_state).toBe('GATE');
    const done = await call('POST', `${P('p2')}/update_status`, { lease_token: lease, state: 'COMPLETE', ...nulls });
    expect(done.status).toBe(200);
    expect(done.body.phase_state).toBe('COMPLETE');
  });

  it('auditor_request with the original builder_result object (itself holding nulls) -> 200', async () => {
    const lease = await claim();
    const gate = await call('POST', `${P('p3')}/auditor_request`, {
      lease_token: lease,
      phase_id: 'p3',
      run_id: RUN,
      tier_id: 't2',
      builder_result: { phase_id: 'p3', run_id: RUN, patch_content: null, files_changed: [], status: 'success', notes: '' },
      failure_context: '',
      review_focus: 'general',
      auditor_profile: null,
    });
    expect(gate.status).toBe(200);
  });
});

describe('strictness stays', () => {
  let lease: string;
  beforeAll(async () => {
    expect((await call('POST', '/runs/start', runStart('py-strict'))).status).toBe(201);
    const c = await call('POST', '/phases/claim', { executor_id: 'py', run_id: 'py-strict' });
    lease = c.body.lease_token;
  });
  const S = '/runs/py-strict/phases/p1';
  const builder = () => ({ lease_token: lease, status: 'failed', suggested_issues: [] as unknown[] });
  const start = () => runStart('py-strict-2') as Record<string, any>;

  it.each([
    ['null run_id', '/runs/start', () => ({ ...start(), run: { ...start().run, run_id: null } })],
    ['null run', '/runs/start', () => ({ ...start(), run: null })],
    ['null tiers', '/runs/start', () => ({ ...start(), tiers: null })],
    ['null tier name', '/runs/start', () => ({ ...start(), tiers: [{ ...start().tiers[0], name: null }] })],
    ['null phase tier_id', '/runs/start', () => ({ ...start(), phases: [{ ...start().phases[0], tier_id: null }] })],
    ['null ci command', '/runs/start', () => ({ ...start(), phases: [{ ...start().phases[1], ci: { command: null } }] })],
    ['unknown run field (null)', '/runs/start', () => ({ ...start(), run: { ...start().run, surprise: null } })],
    ['unknown top-level field (null)', '/runs/start', () => ({ ...start(), surprise: null })],
    ['unknown scope field (null)', '/runs/start', () => ({ ...start(), phases: [{ ...start().phases[0], scope: { paths: null, deliverables: null } }] })],
    ['null status', `${S}/builder_result`, () => ({ ...builder(), status: null })],
    ['null lease_token', `${S}/builder_result`, () => ({ ...builder(), lease_token: null })],
    ['null issue_key of a suggested issue', `${S}/builder_result`, () => ({ ...builder(), suggested_issues: [{ ...suggestedIssue, issue_key: null }] })],
    ['unknown field (null)', `${S}/builder_result`, () => ({ ...builder(), surprise: null })],
    ['unknown field', `${S}/builder_result`, () => ({ ...builder(), surprise: 1 })],
    ['unknown field in a suggested issue (null)', `${S}/builder_result`, () => ({ ...builder(), suggested_issues: [{ ...suggestedIssue, extra: null }] })],
    ['wrong type', `${S}/builder_result`, () => ({ ...builder(), files_changed: 'a.ts' })],
    ['wrong type (patch_content)', `${S}/builder_result`, () => ({ ...builder(), patch_content: 5 })],
    ['null lease_token', `${S}/auditor_request`, () => ({ lease_token: null })],
    ['null ci.passed', `${S}/auditor_request`, () => ({ lease_token: lease, ci: { passed: null } })],
    ['unknown field (null)', `${S}/auditor_request`, () => ({ lease_token: lease, auditor_profle: null })],
    ['null recommendation', `${S}/auditor_result`, () => ({ lease_token: lease, recommendation: null })],
    ['unknown field (null)', `${S}/auditor_result`, () => ({ lease_token: lease, recommendation: 'approve', approved: null })],
    ['null state', `${S}/update_status`, () => ({ lease_token: lease, state: null })],
    ['unknown field (null)', `${S}/update_status`, () => ({ lease_token: lease, state: 'FAILED', status: null })],
    // Without a lease token a write is an operator's, unfenced: a null token must not come to mean that.
    ['null lease_token', `${S}/update_status`, () => ({ lease_token: null, state: 'FAILED' })],
    ['null lease_token', `${S}/record_issue`, () => ({ lease_token: null, issue_key: 'k', severity: 'minor', category: 'c' })],
    ['null issue_key', `${S}/record_issue`, () => ({ lease_token: lease, issue_key: null, severity: 'minor', category: 'c' })],
    ['null severity', `${S}/record_issue`, () => ({ lease_token: lease, issue_key: 'k', severity: null, category: 'c' })],
    ['unknown field (null)', `${S}/record_issue`, () => ({ lease_token: lease, issue_key: 'k', severity: 'minor', category: 'c', phase_file: null })],
  ])('%s on %s -> 422 VALIDATION_FAILED, nothing changed', async (_name, path, body) => {
    const before = await snapshot();
    const r = await call('POST', path, body());
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('VALIDATION_FAILED');
    expect(await snapshot()).toEqual(before);
  });

  it('routes the original lacked keep refusing null (claim, heartbeat, approve)', async () => {
    expect((await call('POST', '/phases/claim', { executor_id: 'py', run_id: null })).status).toBe(422);
    expect((await call('POST', `${S}/heartbeat`, { lease_token: null })).status).toBe(422);
    expect((await call('POST', '/runs/py-strict/approve', { approved: true, notes: null })).status).toBe(422);
  });

  it('documents null as accepted for the optional fields of the compatible bodies in /openapi.json', async () => {
    const doc = (await call('GET', '/openapi.json')).body;
    const builder = doc.components.schemas.BuilderResultRequest;
    expect(builder.properties.patch_content.anyOf).toEqual(expect.arrayContaining([{ type: 'null' }]));
    expect(builder.properties.status.anyOf).toBeUndefined();
    expect(doc.components.schemas.UpdateStatusRequest.properties.lease_token.anyOf).toBeUndefined();
    expect(builder.properties.suggested_issues.anyOf).toEqual(expect.arrayContaining([{ type: 'null' }]));
    expect(doc.components.schemas.RunStartRequest.properties.run.properties.token_cap.anyOf).toEqual(expect.arrayContaining([{ type: 'null' }]));
    expect(doc.components.schemas.ClaimRequest.properties.run_id.anyOf).toBeUndefined();
  });
});
