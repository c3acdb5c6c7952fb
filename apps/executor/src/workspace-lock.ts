import { createHash, randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The content of a workspace lock file: who holds it, since when. */
export interface LockHolder {
  pid: number;
  executor_id: string;
  hostname: string;
  acquired_at: string;
  /** Unique per acquisition, so a lock is never mistaken for a later one of the same process. */
  nonce: string;
}

/** A lock file as read: its exact bytes (which identify it) and, when they parse, its holder. */
interface LockFile {
  raw: string;
  holder: LockHolder | undefined;
}

/** A lock taken over from a process that is gone; `holder` is undefined when its file was unreadable. */
export interface LockTakeover {
  holder: LockHolder | undefined;
}

/** A waiter's place in line: who came first (`since`, then `nonce` to break ties). */
interface Ticket {
  nonce: string;
  since: number;
}

/** Nonces of the locks this process holds, to tell them from a dead process's lock that had the same pid. */
const heldHere = new Set<string>();

/** `.git/autopack/workspace.lock` of a workspace (inside `.git`, so never part of the working tree). */
export function workspaceLockPath(workspace: string): string {
  return path.join(workspace, '.git', 'autopack', 'workspace.lock');
}

/**
 * Creates `file` holding `content`, only if it does not exist: the content is written to a
 * private file first and then hard-linked into place, which is exclusive like O_EXCL but never
 * lets another process see the file empty or half-written. Returns false when it existed.
 */
function createExclusive(file: string, content: string): boolean {
  const staging = `${file}.${randomUUID()}.tmp`;
  writeFileSync(staging, content);
  try {
    linkSync(staging, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    rmSync(staging, { force: true });
  }
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function readLock(file: string): LockFile | undefined {
  const raw = readOrUndefined(file);
  if (raw === undefined) return undefined;
  try {
    const h = JSON.parse(raw) as Partial<LockHolder>;
    const valid = Number.isSafeInteger(h.pid) && (h.pid as number) > 0 && typeof h.nonce === 'string' && typeof h.hostname === 'string';
    return { raw, holder: valid ? (h as LockHolder) : undefined };
  } catch {
    return { raw, holder: undefined };
  }
}

/**
 * Whether the holder's process still runs. Only processes of this machine can be checked; a
 * holder on another host (a workspace on a shared file system) counts as running.
 */
function isRunning(holder: LockHolder): boolean {
  if (holder.hostname !== hostname()) return true;
  if (holder.pid === process.pid) return heldHere.has(holder.nonce);
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the lock `stale` (whose holder is gone) unless that already happened. Several waiters
 * may find the same dead holder; only the one that creates a takeover marker named after this
 * very lock removes it, after checking it is still there, so a waiter that looked earlier
 * can never delete the fresh lock of the process that took over first. If a marker's creator
 * died in between, the next marker is used. Returns whether this call removed the lock.
 */
function removeStaleLock(file: string, stale: LockFile, me: string): boolean {
  const id = createHash('sha256').update(stale.raw).digest('hex').slice(0, 16);
  for (let i = 0; ; i++) {
    const marker = `${file}.takeover-${id}-${i}`;
    if (!createExclusive(marker, me)) {
      const taker = readLock(marker)?.holder;
      if (taker && isRunning(taker)) return false;
      continue;
    }
    try {
      if (readLock(file)?.raw !== stale.raw) return false;
      rmSync(file, { force: true });
      return true;
    } finally {
      rmSync(marker, { force: true });
    }
  }
}

/**
 * The lock that keeps several executor processes on one machine from using one workspace at
 * the same time. Held for each attempt and for the start-up checks; released on every path.
 *
 * Waiters line up: each one that finds the lock taken leaves a queue entry next to it, and
 * the lock goes to the waiter that came first. Without the line, the executor that just
 * released the lock would take it straight back on its next attempt, and a waiter that only
 * looks every `pollMs` would hardly ever get it. Waiters refresh their entries while they
 * wait, so the entry of a waiter that died goes stale and stops holding the line.
 */
export class WorkspaceLock {
  readonly file: string;
  private held: LockHolder | undefined;
  private readonly queuePrefix: string;
  private readonly staleQueueMs: number;

  constructor(
    workspace: string,
    private readonly executorId: string,
    private readonly pollMs = 250,
  ) {
    this.file = workspaceLockPath(workspace);
    this.queuePrefix = `${path.basename(this.file)}.queue-`;
    this.staleQueueMs = Math.max(10_000, pollMs * 40);
  }

  /**
   * Waits until this process holds the lock: a running holder is waited for (`onWait` is told
   * once per holder), a holder whose process is gone crashed and its lock is taken over.
   * Resolves to the takeover, if there was one. Rejects with the signal's reason when it is
   * aborted while waiting.
   */
  async acquire({ signal, onWait }: { signal?: AbortSignal; onWait?: (holder: LockHolder) => void } = {}): Promise<LockTakeover | undefined> {
    if (this.held) throw new Error(`the workspace lock ${this.file} is already held by this executor`);
    mkdirSync(path.dirname(this.file), { recursive: true });
    const ticket: Ticket = { nonce: randomUUID(), since: Date.now() };
    const queueEntry = path.join(path.dirname(this.file), `${this.queuePrefix}${ticket.nonce}`);
    let queued = false;
    let takeover: LockTakeover | undefined;
    let announced: string | undefined;
    try {
      for (;;) {
        signal?.throwIfAborted();
        const myTurn = !this.waitersAhead(ticket, queued);
        const me: LockHolder = { pid: process.pid, executor_id: this.executorId, hostname: hostname(), acquired_at: new Date().toISOString(), nonce: ticket.nonce };
        if (myTurn && createExclusive(this.file, JSON.stringify(me))) {
          this.held = me;
          heldHere.add(me.nonce);
          return takeover;
        }
        const current = readLock(this.file);
        if (current && (!current.holder || !isRunning(current.holder))) {
          // Unreadable content was not written by an executor (they write whole files): as dead as a gone pid.
          if (removeStaleLock(this.file, current, JSON.stringify(me))) takeover = { holder: current.holder };
          continue;
        }
        if (!current && myTurn) continue; // released just now
        if (current?.holder && announced !== current.holder.nonce) {
          announced = current.holder.nonce;
          onWait?.(current.holder);
        }
        this.standInLine(queueEntry, ticket, queued);
        queued = true;
        try {
          await sleep(this.pollMs, undefined, { signal });
        } catch (err) {
          signal?.throwIfAborted();
          throw err;
        }
      }
    } finally {
      if (queued) rmSync(queueEntry, { force: true });
    }
  }

  /** Gives the lock up if this process holds it. Synchronous, so it also works in an `exit` handler. */
  release(): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    heldHere.delete(held.nonce);
    if (readLock(this.file)?.holder?.nonce === held.nonce) rmSync(this.file, { force: true });
  }

  /** Enters the line, or shows this waiter is still in it (an entry removed as stale is written again). */
  private standInLine(entry: string, ticket: Ticket, queued: boolean): void {
    if (queued) {
      try {
        const now = new Date();
        utimesSync(entry, now, now);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    createExclusive(entry, JSON.stringify(ticket));
  }

  /**
   * Whether another live waiter goes first: any one for a newcomer that is not in line yet
   * (nobody jumps the line), else one that came earlier. Stale entries are removed.
   */
  private waitersAhead(ticket: Ticket, queued: boolean): boolean {
    const dir = path.dirname(this.file);
    for (const name of readdirSync(dir)) {
      if (!name.startsWith(this.queuePrefix) || name.endsWith('.tmp') || name === `${this.queuePrefix}${ticket.nonce}`) continue;
      const entry = path.join(dir, name);
      let other: Ticket;
      try {
        if (Date.now() - statSync(entry).mtimeMs > this.staleQueueMs) {
          rmSync(entry, { force: true });
          continue;
        }
        other = JSON.parse(readOrUndefined(entry) ?? 'null') as Ticket;
      } catch {
        continue; // gone meanwhile, or not an entry of ours
      }
      if (!other || typeof other.since !== 'number' || typeof other.nonce !== 'string') continue;
      if (!queued || other.since < ticket.since || (other.since === ticket.since && other.nonce < ticket.nonce)) return true;
    }
    return false;
  }
}
