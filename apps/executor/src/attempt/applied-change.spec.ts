import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ApplyPlan } from '../governed-apply.js';
import { AppliedChange } from './applied-change.js';

let ws: string;
const marker = () => path.join(ws, '.git', 'autopack', 'inflight.json');
const read = (p: string) => readFileSync(path.join(ws, p), 'utf8');

beforeEach(() => {
  ws = mkdtempSync(path.join(os.tmpdir(), 'autopack-change-'));
  mkdirSync(path.join(ws, '.git'));
  writeFileSync(path.join(ws, 'keep.txt'), 'old\n');
  writeFileSync(path.join(ws, 'gone.txt'), 'bye\n');
});
afterEach(() => rmSync(ws, { recursive: true, force: true }));

const plan: ApplyPlan = {
  files: [
    { path: 'keep.txt', before: 'old\n', after: 'new\n' },
    { path: 'gone.txt', before: 'bye\n', after: null },
    { path: 'src/deep/added.txt', before: null, after: 'added\n' },
  ],
  written: ['keep.txt', 'src/deep/added.txt'],
  deleted: ['gone.txt'],
};
const attempt = { runId: 'r1', phaseId: 'p1', attempt: 2 };

describe(AppliedChange.name, () => {
  it('marks the attempt in flight with its paths, then writes the plan', () => {
    AppliedChange.apply(ws, plan, attempt);
    expect(JSON.parse(readFileSync(marker(), 'utf8'))).toEqual({ ...attempt, paths: ['keep.txt', 'gone.txt', 'src/deep/added.txt'] });
    expect(read('keep.txt')).toBe('new\n');
    expect(existsSync(path.join(ws, 'gone.txt'))).toBe(false);
    expect(read('src/deep/added.txt')).toBe('added\n');
  });

  it('restores the working copy byte for byte, removes the directories it created, and clears the marker', () => {
    const change = AppliedChange.apply(ws, plan, attempt);
    change.restore();
    expect(read('keep.txt')).toBe('old\n');
    expect(read('gone.txt')).toBe('bye\n');
    expect(existsSync(path.join(ws, 'src'))).toBe(false);
    expect(existsSync(marker())).toBe(false);
  });

  it('restores only once: a second restore does not undo what came after the first', () => {
    const change = AppliedChange.apply(ws, plan, attempt);
    change.restore();
    writeFileSync(path.join(ws, 'keep.txt'), 'later\n');
    change.restore();
    expect(read('keep.txt')).toBe('later\n');
  });

  it('once kept, leaves the change in place on restore and clears the marker', () => {
    const change = AppliedChange.apply(ws, plan, attempt);
    change.keep();
    expect(existsSync(marker())).toBe(false);
    change.restore();
    expect(read('keep.txt')).toBe('new\n');
    expect(read('src/deep/added.txt')).toBe('added\n');
    expect(existsSync(path.join(ws, 'gone.txt'))).toBe(false);
  });
});
