/**
 * The workspace lock across real processes: each one imports the built module (dist/, so
 * `npm run build` first), which is why this lives in the e2e tier and not next to the code.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os, { hostname } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { workspaceLockPath } from '../../apps/executor/src/workspace-lock.js';

let tmp: string;
let ws: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-lock-'));
  ws = path.join(tmp, 'ws');
  mkdirSync(path.join(ws, '.git'), { recursive: true });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A lock file as another executor process would have written it. */
function writeLockOf(pid: number): void {
  mkdirSync(path.dirname(workspaceLockPath(ws)), { recursive: true });
  writeFileSync(workspaceLockPath(ws), JSON.stringify({ pid, executor_id: `other-${pid}`, hostname: hostname(), acquired_at: new Date().toISOString(), nonce: `n-${pid}` }));
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((resolve) => child.once('exit', resolve));
}

describe('WorkspaceLock (built module, real processes)', () => {
  it('gives the lock to one process at a time when several wait on the same dead holder (built module, real processes)', async () => {
    const built = path.resolve('dist/apps/executor/src/workspace-lock.js');
    expect(existsSync(built)).toBe(true);
    const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await exited(dead);
    writeLockOf(dead.pid!);
    const journal = path.join(ws, 'journal');
    // Each process takes the lock 5 times and writes enter/leave lines while holding it.
    const script = `
      import { appendFileSync } from 'node:fs';
      const { WorkspaceLock } = await import(${JSON.stringify(pathToFileURL(built).href)});
      const lock = new WorkspaceLock(process.argv[1], 'w' + process.pid, 5);
      for (let i = 0; i < 5; i++) {
        await lock.acquire();
        appendFileSync(process.argv[2], 'enter ' + process.pid + '\\n');
        await new Promise((r) => setTimeout(r, 10));
        appendFileSync(process.argv[2], 'leave ' + process.pid + '\\n');
        lock.release();
      }`;
    const workers = Array.from({ length: 4 }, () => spawn(process.execPath, ['--input-type=module', '-e', script, ws, journal], { stdio: ['ignore', 'ignore', 'pipe'] }));
    const codes = await Promise.all(workers.map((w) => new Promise<number | null>((resolve) => w.on('close', resolve))));
    expect(codes).toEqual([0, 0, 0, 0]);
    const lines = readFileSync(journal, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(40);
    for (let i = 0; i < lines.length; i += 2) {
      const [enter, leave] = [lines[i].split(' '), lines[i + 1].split(' ')];
      expect([enter[0], leave[0], leave[1]]).toEqual(['enter', 'leave', enter[1]]);
    }
    expect(existsSync(workspaceLockPath(ws))).toBe(false);
    expect(readdirSync(path.dirname(workspaceLockPath(ws)))).toEqual([]);
  });
});
