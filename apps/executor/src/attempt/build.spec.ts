import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AttemptRecord, BuilderEdit } from '@app/contracts';
import { FakeLlm, type FakeReply, FakeSupervisor, bothProviders, makeClaim, silentLog, steppingClock } from '../../../../test/executor/attempt-fakes.js';
import { build } from './build.js';
import { MeteredLlm } from './metered-llm.js';

const routing = bothProviders();
let ws: string;
beforeEach(() => {
  ws = mkdtempSync(path.join(os.tmpdir(), 'autopack-build-'));
  mkdirSync(path.join(ws, '.git'));
  writeFileSync(path.join(ws, 'hello.txt'), 'hello from the branch\n');
});
afterEach(() => rmSync(ws, { recursive: true, force: true }));

const create: BuilderEdit[] = [{ path: 'greet.txt', action: 'create', content: 'one\ntwo\n' }];
const hashOf = (edits: BuilderEdit[]) => createHash('sha256').update(JSON.stringify(edits)).digest('hex');
const failedAttempt = (patch: Partial<AttemptRecord>): AttemptRecord => ({ attempt: 1, outcome: 'ci_failed', reason: 'ci_failed: x', feedback: null, edits_hash: null, created_at: '2026-01-01T00:00:00Z', ...patch });

async function run(reply: FakeReply, claim = makeClaim(), baselineFailed = false) {
  const llm = new FakeLlm([reply]);
  const metered = new MeteredLlm({ llm, supervisor: new FakeSupervisor(), routing, clock: steppingClock(), log: silentLog }, claim);
  const result = await build({ llm: metered, routing, workspace: ws, log: silentLog }, claim, { baselineFailed, signal: new AbortController().signal });
  return { result, request: llm.requests[0] };
}

describe(build.name, () => {
  it('plans the edits of a valid reply, with their diff, hash and the builder usage', async () => {
    const { result, request } = await run({ toolInput: { summary: 'adds greet.txt', edits: create } });
    expect(request).toMatchObject({ ...routing.defaults.builder, maxTokens: routing.builderMaxTokens, temperature: 0.2, tool: { name: 'submit_changes' } });
    // The repository context is the cacheable start of the user message; the phase follows it.
    expect(request.cacheablePrefix).toContain('## hello.txt\n```\nhello from the branch\n');
    expect(request.prompt.startsWith('# Phase p1: Add a greeting')).toBe(true);
    expect(result).toMatchObject({
      kind: 'planned',
      editsHash: hashOf(create),
      plan: { files: [{ path: 'greet.txt', before: null, after: 'one\ntwo\n' }], written: ['greet.txt'], deleted: [] },
      linesAdded: 2,
      linesRemoved: 0,
      usage: { report_id: 'r1:p1:1:builder', reservation_id: 'res-1', prompt_tokens: 1000, completion_tokens: 200, calls: 1 },
    });
    expect(result.kind === 'planned' && result.args.summary).toBe('adds greet.txt');
  });

  it('tells the builder when CI already fails on the branch head', async () => {
    const claim = makeClaim({ run: { ci: { command: 'npm test' } } });
    const held = await run({ toolInput: { summary: 's', edits: create } }, claim, false);
    const lenient = await run({ toolInput: { summary: 's', edits: create } }, claim, true);
    expect(held.request.prompt).toContain('this command must succeed: `npm test`');
    expect(lenient.request.prompt).toContain('already fails on the branch before your change');
  });

  it('fails a reply without a tool call', async () => {
    const { result } = await run({ toolInput: undefined, malformedReason: 'no tool call in reply' });
    expect(result).toEqual({
      kind: 'build_failed',
      outcome: 'builder_failed',
      reason: 'malformed reply: no tool call in reply',
      feedback: 'Your previous reply was rejected: no tool call in reply. Reply only by calling submit_changes with arguments that match its schema.',
      usage: expect.objectContaining({ report_id: 'r1:p1:1:builder' }),
    });
  });

  it('fails arguments that do not match the tool schema, naming each problem', async () => {
    const { result } = await run({ toolInput: { summary: '', edits: [{ path: 'a', action: 'explode' }] } });
    expect(result).toMatchObject({ kind: 'build_failed', outcome: 'builder_failed', reason: 'malformed reply: arguments fail the submit_changes schema' });
    expect(result.kind === 'build_failed' && result.feedback).toMatch(/^Your previous submit_changes call had invalid arguments:\n- summary: /);
    expect(result).not.toHaveProperty('editsHash');
  });

  it('does not plan edits identical to a failed attempt', async () => {
    const claim = makeClaim({ previous_attempts: [failedAttempt({ attempt: 1, edits_hash: hashOf(create), reason: 'ci_failed: `npm test` exit code 1' })] });
    const { result } = await run({ toolInput: { summary: 's', edits: create } }, claim);
    expect(result).toMatchObject({ kind: 'build_failed', outcome: 'repeated_edits', reason: 'repeated_edits: identical to attempt 1', editsHash: hashOf(create) });
    expect(result.kind === 'build_failed' && result.feedback).toContain('which failed (ci_failed: `npm test` exit code 1)');
  });

  it('plans the same edits again after an attempt that failed for reasons not the model’s', async () => {
    const claim = makeClaim({ previous_attempts: [failedAttempt({ outcome: 'lease_expired', edits_hash: hashOf(create) })] });
    expect((await run({ toolInput: { summary: 's', edits: create } }, claim)).result.kind).toBe('planned');
  });

  it('refuses edits outside the phase scope, writing nothing', async () => {
    const claim = makeClaim({ phase: { scope: { paths: ['docs/'] } } });
    const { result } = await run({ toolInput: { summary: 's', edits: create } }, claim);
    expect(result).toMatchObject({ kind: 'build_failed', outcome: 'refused', editsHash: hashOf(create) });
    expect(result.kind === 'build_failed' && result.feedback).toMatch(/^Your previous edits were refused and nothing was written:\n- .*greet\.txt/);
    expect(existsSync(path.join(ws, 'greet.txt'))).toBe(false);
  });

  it('refuses edits that change nothing', async () => {
    const same: BuilderEdit[] = [{ path: 'hello.txt', action: 'replace', content: 'hello from the branch\n' }];
    const { result } = await run({ toolInput: { summary: 's', edits: same } });
    expect(result).toMatchObject({ kind: 'build_failed', outcome: 'refused', reason: 'no changes: the edits leave every file as it was', editsHash: hashOf(same) });
  });
});
