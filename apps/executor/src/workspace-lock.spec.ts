import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os, { hostname } from 'node:os';
import path from 'node:path';
import { type LockHolder, WorkspaceLock, workspaceLockPath } from './workspace-lock.js';

let tmp: string;
let ws: string;
let seq = 0;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-lock-'));
});
beforeEach(() => {
  ws = path.join(tmp, `ws${++seq}`);
  mkdirSync(path.join(ws, '.git'), { recursive: true });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function holderOnDisk(): LockHolder {
  return JSON.parse(readFileSync(workspaceLockPath(ws), 'utf8')) as LockHolder;
}

/** A lock file as another executor process would have written it. */
function writeLockOf(pid: number): void {
  mkdirSync(path.dirname(workspaceLockPath(ws)), { recursive: true });
  writeFileSync(workspaceLockPath(ws), JSON.stringify({ pid, executor_id: `other-${pid}`, hostname: hostname(), acquired_at: new Date().toISOString(), nonce: `n-${pid}` }));
}

function startIdleProcess(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((resolve) => child.once('exit', resolve));
}

/** Whether `p` settles within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('WorkspaceLock', () => {
  it('writes pid, executor id and time while held, and removes the file on release', async () => {
    const lock = new WorkspaceLock(ws, 'exec-a');
    expect(await lock.acquire()).toBeUndefined();
    expect(holderOnDisk()).toMatchObject({ pid: process.pid, executor_id: 'exec-a', hostname: hostname() });
    expect(Date.parse(holderOnDisk().acquired_at)).toBeGreaterThan(Date.now() - 60_000);
    lock.release();
    lock.release();
    expect(existsSync(workspaceLockPath(ws))).toBe(false);
    // Nothing is left in .git/autopack but what was there before.
    expect(readdirSync(path.dirname(workspaceLockPath(ws)))).toEqual([]);
  });

  it('waits while a live holder has it, and gets it once the holder releases', async () => {
    const first = new WorkspaceLock(ws, 'exec-a', 20);
    const second = new WorkspaceLock(ws, 'exec-b', 20);
    await first.acquire();
    const waitedFor: LockHolder[] = [];
    const acquiring = second.acquire({ onWait: (h) => waitedFor.push(h) });
    expect(await settlesWithin(acquiring, 300)).toBe(false);
    expect(waitedFor.map((h) => h.executor_id)).toEqual(['exec-a']);
    first.release();
    expect(await acquiring).toBeUndefined();
    expect(holderOnDisk().executor_id).toBe('exec-b');
    second.release();
  });

  it('waits for a running process of another executor, and takes the lock over once that process is gone', async () => {
    const child = startIdleProcess();
    try {
      writeLockOf(child.pid!);
      const lock = new WorkspaceLock(ws, 'exec-b', 20);
      const acquiring = lock.acquire();
      expect(await settlesWithin(acquiring, 300)).toBe(false);
      child.kill('SIGKILL');
      await exited(child);
      expect(await acquiring).toEqual({ holder: expect.objectContaining({ pid: child.pid, executor_id: `other-${child.pid}` }) });
      expect(holderOnDisk()).toMatchObject({ pid: process.pid, executor_id: 'exec-b' });
      lock.release();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('takes over at once a lock whose process is dead, left by an earlier process with this pid, or unreadable', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await exited(child);
    const lock = new WorkspaceLock(ws, 'exec-b', 20);
    for (const stale of [
      () => writeLockOf(child.pid!),
      () => writeLockOf(process.pid),
      () => writeFileSync(workspaceLockPath(ws), '{"pid":'),
    ]) {
      stale();
      expect(await settlesWithin(lock.acquire(), 2000)).toBe(true);
      expect(holderOnDisk().executor_id).toBe('exec-b');
      lock.release();
    }
  });

  it('stops waiting when aborted, with the signal reason', async () => {
    const first = new WorkspaceLock(ws, 'exec-a', 20);
    await first.acquire();
    const controller = new AbortController();
    const acquiring = new WorkspaceLock(ws, 'exec-b', 20).acquire({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutdown')), 50);
    await expect(acquiring).rejects.toThrow('shutdown');
    expect(holderOnDisk().executor_id).toBe('exec-a');
    first.release();
  });

  it('serves waiters in arrival order: the executor that just released cannot take the lock straight back', async () => {
    const first = new WorkspaceLock(ws, 'exec-a', 20);
    const second = new WorkspaceLock(ws, 'exec-b', 20);
    await first.acquire();
    const order: string[] = [];
    const waiting = second.acquire().then(() => order.push('exec-b'));
    await new Promise((r) => setTimeout(r, 60)); // exec-b is in line
    first.release();
    const again = first.acquire().then(() => order.push('exec-a'));
    await waiting;
    expect(order).toEqual(['exec-b']);
    second.release();
    await again;
    expect(order).toEqual(['exec-b', 'exec-a']);
    first.release();
    expect(readdirSync(path.dirname(workspaceLockPath(ws)))).toEqual([]);
  });

  it('does not wait behind the queue entry of a waiter that stopped refreshing it (it died)', async () => {
    mkdirSync(path.dirname(workspaceLockPath(ws)), { recursive: true });
    const entry = `${workspaceLockPath(ws)}.queue-dead`;
    writeFileSync(entry, JSON.stringify({ nonce: 'dead', since: 0 }));
    const old = new Date(Date.now() - 60_000);
    utimesSync(entry, old, old);
    const lock = new WorkspaceLock(ws, 'exec-a', 20);
    expect(await settlesWithin(lock.acquire(), 1000)).toBe(true);
    lock.release();
    expect(existsSync(entry)).toBe(false);
  });

  it('release never removes a lock someone else holds', async () => {
    const lock = new WorkspaceLock(ws, 'exec-a');
    await lock.acquire();
    writeLockOf(12345);
    lock.release();
    expect(holderOnDisk().pid).toBe(12345);
  });
});
