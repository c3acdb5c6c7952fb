import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { planningCategories } from '@app/domain';
import { makeClaim } from '../../../test/executor/attempt-fakes.js';
import { buildContext } from './context.js';
import { PLANNER_SYSTEM_PROMPT, type PlannerPromptInput, type PromptParts, builderPrompt, plannerPrompt, treeOrder } from './prompts.js';

const whole = (p: PromptParts) => `${p.cacheable}\n\n${p.prompt}`;

const base: PlannerPromptInput = {
  intent: 'A tiny HTTP service with a health route.',
  repository: { files: [], truncated: false },
  categories: planningCategories(),
  budgets: { tokensLeft: 4_500_000, costLeftUsd: null, maxPhases: 12 },
};

describe(plannerPrompt.name, () => {
  it('holds the intent, the category table and the budgets, and asks for submit_plan', () => {
    const prompt = whole(plannerPrompt(base));
    expect(prompt).toContain('# Intent\nA tiny HTTP service with a health route.\n\n');
    expect(prompt).toContain('| task_category | high risk | complexity | CI profile | builder attempts | incident token cap |');
    expect(prompt).toContain('| security_auth_change (also security_auth) | yes | high | strict, CI required | 2 | 800,000 |');
    expect(prompt).toContain('| docs | no | low | normal | 2 | 200,000 |');
    expect(prompt).toContain('| generic | no | medium | normal | 3 | 500,000 |');
    expect(prompt).toContain('- Tokens left for the planned phases: 4,500,000');
    expect(prompt).toContain('- Phases: at most 12');
    expect(prompt).toContain('- Cost: no cap');
    expect(prompt.endsWith('Call submit_plan now.')).toBe(true);
    expect(PLANNER_SYSTEM_PROMPT).toContain('submit_plan');
  });

  it('caches the category table and the repository map, and sends the intent, budgets and feedback after them', () => {
    const parts = plannerPrompt({ ...base, repository: { files: [{ path: 'package.json', bytes: 120 }], truncated: false } });
    expect(parts.cacheable.startsWith('# Task categories\n')).toBe(true);
    expect(parts.cacheable.endsWith('# Repository (1 files: path, bytes)\n- package.json (120)')).toBe(true);
    expect(parts.prompt.startsWith('# Intent\nA tiny HTTP service with a health route.\n\n# Budgets\n')).toBe(true);
    // A later attempt (less budget left, feedback) repeats the cacheable part byte for byte.
    const retry = plannerPrompt({
      ...base,
      repository: { files: [{ path: 'package.json', bytes: 120 }], truncated: false },
      budgets: { ...base.budgets, tokensLeft: 4_000_000 },
      previousAttempts: [{ attempt: 1, outcome: 'builder_failed', reason: 'invalid plan', feedback: 'fix it', edits_hash: null, created_at: '2026-01-01T00:00:00Z' }],
    });
    expect(retry.cacheable).toBe(parts.cacheable);
    expect(retry.prompt).not.toBe(parts.prompt);
  });

  it('says the repository is empty, or maps its files with their sizes', () => {
    expect(whole(plannerPrompt(base))).toContain('# Repository\nThe repository is empty');
    const mapped = whole(plannerPrompt({ ...base, repository: { files: [{ path: 'package.json', bytes: 120 }, { path: 'src/server.js', bytes: 2048 }], truncated: false } }));
    expect(mapped).toContain('# Repository (2 files: path, bytes)\n- package.json (120)\n- src/server.js (2048)\n\n');
    expect(mapped).not.toContain('The repository is empty');
    const cut = whole(plannerPrompt({ ...base, repository: { files: [{ path: 'a.txt', bytes: 1 }], truncated: true } }));
    expect(cut).toContain('# Repository (1+ files: path, bytes)\n- a.txt (1)\n- ... more files not listed');
  });

  it("names the cost left and the run's CI command when there are", () => {
    const prompt = plannerPrompt({ ...base, budgets: { ...base.budgets, costLeftUsd: 3.5 }, runCi: { command: 'npm test' } }).prompt;
    expect(prompt).toContain('- Cost left: $3.50');
    expect(prompt).toContain("- Phases without ci use the run's CI command: `npm test`");
  });

  it('carries the feedback of failed attempts', () => {
    const { prompt } = plannerPrompt({
      ...base,
      previousAttempts: [{ attempt: 1, outcome: 'builder_failed', reason: 'invalid plan', feedback: 'fix every problem:\n- phase p1: tier "x" is not in the plan', edits_hash: null, created_at: '2026-01-01T00:00:00Z' }],
    });
    expect(prompt).toContain('## Attempt 1 failed (builder_failed)\nfix every problem:\n- phase p1: tier "x" is not in the plan');
  });
});

describe(builderPrompt.name, () => {
  let ws: string;
  beforeEach(() => {
    ws = mkdtempSync(path.join(os.tmpdir(), 'autopack-prompt-'));
    const files: Record<string, string> = {
      'package.json': '{ "name": "calc" }\n',
      'src/add.js': 'export const add = (a, b) => a + b;\n',
      'src/mul.js': 'export const mul = (a, b) => a * b;\n',
      'src/util.js': 'export const id = (x) => x;\n',
      'test/run.js': '// runs the tests\n',
    };
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
      writeFileSync(path.join(ws, rel), content);
    }
  });
  afterEach(() => rmSync(ws, { recursive: true, force: true }));

  const phaseClaim = (id: string, scope: string[], extra: Parameters<typeof makeClaim>[0] = {}) =>
    makeClaim({
      phase_id: id,
      phase: { phase_id: id, name: `Phase ${id}`, description: `Work of ${id}`, scope: { paths: scope, read_only_context: ['test/run.js'] }, acceptance_criteria: ['tests pass'] },
      run: { ci: { command: 'node test/run.js' } },
      ...extra,
    });
  const contextOf = (scope: string[], changedInRun?: Map<string, 'added' | 'modified' | 'removed'>) =>
    buildContext({ root: ws, scopePaths: scope, readOnlyPaths: ['test/run.js'], tokenBudget: 50_000, largeFileLines: 400, changedInRun });

  it('puts the repository context first, in path order, and the phase, scope and feedback after it', () => {
    const parts = builderPrompt(phaseClaim('p1', ['src/add.js']), contextOf(['src/add.js']));
    expect(parts.cacheable.startsWith('# Repository context\n')).toBe(true);
    const order = ['## src/add.js', '## src/mul.js', '## src/util.js'].map((h) => parts.cacheable.indexOf(h));
    expect(order.every((at, i) => at > 0 && (i === 0 || at > order[i - 1]))).toBe(true);
    expect(parts.cacheable).not.toContain('# Phase');
    // A file only this phase names (outside the directories it works in) comes after the cacheable part.
    expect(parts.cacheable).not.toContain('test/run.js');
    expect(parts.prompt.startsWith('# More files for this phase (complete content)\n## test/run.js\n')).toBe(true);
    expect(parts.prompt).toContain('\n\n# Phase p1: Phase p1\nWork of p1');
    expect(parts.prompt).toContain('Files shown above that you may change: src/add.js. Every other file shown is read-only context (do not modify).');
    expect(parts.prompt.endsWith('Call submit_changes now.')).toBe(true);

    const retry = builderPrompt(
      phaseClaim('p1', ['src/add.js'], { attempt: 2, previous_attempts: [{ attempt: 1, outcome: 'ci_failed', reason: 'ci_failed', feedback: 'FAIL test/add.test.js', edits_hash: null, created_at: '2026-01-01T00:00:00Z' }] }),
      contextOf(['src/add.js']),
    );
    expect(retry.cacheable).toBe(parts.cacheable);
    const fb = retry.prompt.indexOf('# Feedback from earlier attempts');
    expect(fb).toBeGreaterThan(retry.prompt.indexOf('# Verification'));
    expect(fb).toBeLessThan(retry.prompt.indexOf('Call submit_changes now.'));
  });

  it('gives two consecutive phases the same cacheable prefix, covering the whole unchanged repository context', () => {
    const first = builderPrompt(phaseClaim('p1', ['src/add.js', 'src/new.js']), contextOf(['src/add.js', 'src/new.js']));
    // p1 created src/new.js; p2 works on another file of the same directory.
    writeFileSync(path.join(ws, 'src/new.js'), 'export const created = true;\n');
    const second = builderPrompt(phaseClaim('p2', ['src/mul.js']), contextOf(['src/mul.js'], new Map([['src/new.js', 'added']])));
    expect(second.cacheable).toBe(first.cacheable);
    for (const f of ['src/add.js', 'src/mul.js', 'src/util.js']) expect(second.cacheable).toContain(`## ${f}\n`);
    // What the run changed follows the cacheable part, before the phase.
    expect(second.cacheable).not.toContain('src/new.js');
    expect(second.prompt.startsWith('# Files changed earlier in this run (complete, current content)\n## src/new.js\n')).toBe(true);
    expect(second.prompt.indexOf('# Phase p2')).toBeGreaterThan(second.prompt.indexOf('## src/new.js'));
  });

  it('keeps every section of the context: large files, missing scope paths and files not shown', () => {
    writeFileSync(path.join(ws, 'src/big.js'), Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n'));
    const context = buildContext({ root: ws, scopePaths: ['src/big.js', 'src/later.js'], readOnlyPaths: [], tokenBudget: 50_000, largeFileLines: 20, maxFileBytes: 40 });
    const parts = builderPrompt(phaseClaim('p3', ['src/big.js', 'src/later.js']), context);
    const all = whole(parts);
    expect(all).toContain('# Scoped paths that do not exist yet (you may create them)\n- src/later.js');
    expect(all).toContain('# Files not shown\n- src/big.js: larger than 40 bytes');
    expect(parts.prompt).toContain('Every file shown above is read-only context (do not modify).');
  });
});

describe(treeOrder.name, () => {
  it("orders paths as a file tree lists them: each directory's subdirectories before its files", () => {
    const paths = ['src/index.js', 'README.md', 'src/lib/b.js', 'test/a.test.js', 'src/lib/a.js', 'package.json', 'src/lib/deep/x.js'];
    expect(paths.map((p) => ({ path: p })).sort(treeOrder).map((f) => f.path)).toEqual([
      'src/lib/deep/x.js',
      'src/lib/a.js',
      'src/lib/b.js',
      'src/index.js',
      'test/a.test.js',
      'README.md',
      'package.json',
    ]);
  });
});
