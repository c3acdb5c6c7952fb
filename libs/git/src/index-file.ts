/**
 * A lean reader and writer of `.git/index` (versions 2 and 3), so the hot paths (commit,
 * clean check) touch only the entries they change instead of going through isomorphic-git,
 * which parses every entry into objects and re-encodes all of them on every write.
 *
 * Unchanged entries keep their encoded bytes and are copied as they are. Extensions (the
 * cache tree and others) are dropped on write, as isomorphic-git does: they are optional
 * caches git rebuilds. Anything this module does not understand (version 4, a `.git` file
 * instead of a directory, conflict stages) makes {@link readIndexFile} return `null`, and
 * callers fall back to isomorphic-git.
 */
import { createHash } from 'node:crypto';
import nodeFs, { type Stats } from 'node:fs';
import path from 'node:path';
import { writeGitFileSync } from './git-fs.js';

const EXTENDED = 0x4000;
const SKIP_WORKTREE = 0x4000;
const INTENT_TO_ADD = 0x2000;
const MAX_UINT32 = 2 ** 32;

/** One stage-0 index entry. Times are split into seconds and nanoseconds as stored. */
export interface IndexEntry {
  path: string;
  ctimeS: number;
  ctimeNs: number;
  mtimeS: number;
  mtimeNs: number;
  dev: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  oid: string;
  /** Version 3 extended flags (skip-worktree, intent-to-add), 0 when none. */
  extFlags: number;
  /**
   * Where the encoded entry lies in {@link IndexFile.buffer} (end exclusive); its bytes are
   * copied on write while the entry is unchanged. -1 for an entry made since.
   */
  start: number;
  end: number;
}

/** A parsed index: its entries in index order and the stat of the file when it was read. */
export interface IndexFile {
  entries: IndexEntry[];
  /** The index file's bytes. */
  buffer: Buffer;
  /** `lstat` of the index file, or null when the repository has no index yet. */
  stat: Stats | null;
  /**
   * True when read with `light`: only `path`, `mode`, `extFlags`, the mtime and the offsets
   * are decoded; get the rest of an entry with {@link decodeEntry}.
   */
  light: boolean;
}

/** The `.git` directory of `dir` when it is a plain directory (not a `.git` file), else null. */
function gitDirOf(dir: string): string | null {
  const gitDir = path.join(dir, '.git');
  try {
    return nodeFs.lstatSync(gitDir).isDirectory() ? gitDir : null;
  } catch {
    return null;
  }
}

/**
 * Reads `dir`'s index. Returns `null` when the fast path cannot handle it (see the module
 * comment); a missing index file reads as an empty index.
 */
export function readIndexFile(dir: string, { light = false }: { light?: boolean } = {}): IndexFile | null {
  const gitDir = gitDirOf(dir);
  if (gitDir === null) return null;
  const file = path.join(gitDir, 'index');
  let buf: Buffer;
  let stat: Stats;
  try {
    stat = nodeFs.lstatSync(file);
    buf = nodeFs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], buffer: Buffer.alloc(0), stat: null, light };
    throw err;
  }
  if (buf.length < 32 || buf.toString('latin1', 0, 4) !== 'DIRC') return null;
  const sum = createHash('sha1').update(buf.subarray(0, buf.length - 20)).digest();
  if (!sum.equals(buf.subarray(buf.length - 20))) return null;
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) return null;
  const count = buf.readUInt32BE(8);
  const entries: IndexEntry[] = new Array<IndexEntry>(count);
  let off = 12;
  const limit = buf.length - 20;
  for (let i = 0; i < count; i++) {
    const start = off;
    if (start + 62 > limit) return null;
    const flags = buf.readUInt16BE(start + 60);
    // A conflict stage: leave merges to isomorphic-git.
    if ((flags & 0x3000) !== 0) return null;
    let p = start + 62;
    let extFlags = 0;
    if (flags & EXTENDED) {
      if (version < 3) return null;
      extFlags = buf.readUInt16BE(p);
      if (extFlags & ~(SKIP_WORKTREE | INTENT_TO_ADD)) return null;
      p += 2;
    }
    const nameLength = flags & 0xfff;
    const end = nameLength < 0xfff ? p + nameLength : buf.indexOf(0, p);
    if (end < p || end >= limit) return null;
    off = start + Math.ceil((end - start + 1) / 8) * 8;
    if (off > limit) return null;
    const filepath = buf.toString('utf8', p, end);
    entries[i] = light ? lightAt(buf, start, off, filepath, extFlags) : decodeAt(buf, start, off, filepath, extFlags);
  }
  return { entries, buffer: buf, stat, light };
}

/** An entry with only path, mtime, mode, flags and offsets decoded (same shape as a full one). */
function lightAt(buf: Buffer, start: number, end: number, filepath: string, extFlags: number): IndexEntry {
  return {
    path: filepath,
    ctimeS: 0,
    ctimeNs: 0,
    mtimeS: buf.readUInt32BE(start + 8),
    mtimeNs: buf.readUInt32BE(start + 12),
    dev: 0,
    ino: 0,
    mode: buf.readUInt32BE(start + 24),
    uid: 0,
    gid: 0,
    size: 0,
    oid: '',
    extFlags,
    start,
    end,
  };
}

function decodeAt(buf: Buffer, start: number, end: number, filepath: string, extFlags: number): IndexEntry {
  return {
    path: filepath,
    ctimeS: buf.readUInt32BE(start),
    ctimeNs: buf.readUInt32BE(start + 4),
    mtimeS: buf.readUInt32BE(start + 8),
    mtimeNs: buf.readUInt32BE(start + 12),
    dev: buf.readUInt32BE(start + 16),
    ino: buf.readUInt32BE(start + 20),
    mode: buf.readUInt32BE(start + 24),
    uid: buf.readUInt32BE(start + 28),
    gid: buf.readUInt32BE(start + 32),
    size: buf.readUInt32BE(start + 36),
    oid: buf.toString('hex', start + 40, start + 60),
    extFlags,
    start,
    end,
  };
}

/** `e` with every field decoded (for an entry of a `light` read). */
export function decodeEntry(index: IndexFile, e: IndexEntry): IndexEntry {
  return !index.light || e.start < 0 ? e : decodeAt(index.buffer, e.start, e.end, e.path, e.extFlags);
}

/** Seconds and nanoseconds of a millisecond time, rounded as isomorphic-git stores them. */
function secondsNanoseconds(ms: number): [number, number] {
  const seconds = Math.floor(ms / 1000);
  return [seconds % MAX_UINT32, Math.floor((ms - seconds * 1000) * 1000000) % MAX_UINT32];
}

/** The index mode of a file with `stats`: 100644, 100755 or 120000 (as isomorphic-git normalises it). */
export function indexMode(stats: Stats): number {
  if (stats.isSymbolicLink()) return 0o120000;
  return stats.mode & 0o111 ? 0o100755 : 0o100644;
}

/** A fresh entry for `filepath` holding `oid`, with the stat data of `stats`. */
export function entryFromStats(filepath: string, stats: Stats, oid: string, extFlags = 0): IndexEntry {
  const [ctimeS, ctimeNs] = secondsNanoseconds(stats.ctimeMs);
  const [mtimeS, mtimeNs] = secondsNanoseconds(stats.mtimeMs);
  return {
    path: filepath,
    ctimeS,
    ctimeNs,
    mtimeS,
    mtimeNs,
    dev: stats.dev % MAX_UINT32,
    ino: stats.ino % MAX_UINT32,
    mode: indexMode(stats),
    uid: stats.uid % MAX_UINT32,
    gid: stats.gid % MAX_UINT32,
    size: stats.size % MAX_UINT32,
    oid,
    extFlags,
    start: -1,
    end: -1,
  };
}

function encodeEntry(e: IndexEntry): Buffer {
  const name = Buffer.from(e.path, 'utf8');
  const fixed = e.extFlags ? 64 : 62;
  const out = Buffer.alloc(Math.ceil((fixed + name.length + 1) / 8) * 8);
  const fields = [e.ctimeS, e.ctimeNs, e.mtimeS, e.mtimeNs, e.dev, e.ino, e.mode, e.uid, e.gid, e.size];
  fields.forEach((v, i) => out.writeUInt32BE(v >>> 0, i * 4));
  out.write(e.oid, 40, 20, 'hex');
  out.writeUInt16BE((e.extFlags ? EXTENDED : 0) | Math.min(name.length, 0xfff), 60);
  if (e.extFlags) out.writeUInt16BE(e.extFlags, 62);
  name.copy(out, fixed);
  return out;
}

/**
 * Writes `entries` (sorted, stage 0) as `dir`'s index, atomically (temporary file and rename).
 * Entries still at their place in `from`'s buffer are copied from it, adjacent ones as one run.
 */
export function writeIndexFile(dir: string, from: IndexFile, entries: IndexEntry[]): void {
  const pieces: Buffer[] = [];
  let runStart = -1;
  let runEnd = -1;
  const flush = (): void => {
    if (runStart >= 0) pieces.push(from.buffer.subarray(runStart, runEnd));
    runStart = runEnd = -1;
  };
  for (const e of entries) {
    if (e.start < 0) {
      flush();
      pieces.push(encodeEntry(e));
    } else if (e.start === runEnd) runEnd = e.end;
    else {
      flush();
      runStart = e.start;
      runEnd = e.end;
    }
  }
  flush();
  const header = Buffer.alloc(12);
  header.write('DIRC', 0, 'latin1');
  header.writeUInt32BE(entries.some((e) => e.extFlags !== 0) ? 3 : 2, 4);
  header.writeUInt32BE(entries.length, 8);
  const body = Buffer.concat([header, ...pieces]);
  const sum = createHash('sha1').update(body).digest();
  writeGitFileSync(path.join(dir, '.git', 'index'), Buffer.concat([body, sum]));
}

/** Orders paths as the index does: by their UTF-8 bytes. */
export function comparePaths(a: string, b: string): number {
  // UTF-16 order equals UTF-8 byte order except around surrogate pairs.
  if (!/[\ud800-\uffff]/.test(a) && !/[\ud800-\uffff]/.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The git blob id of `content`. */
export function blobOid(content: Uint8Array): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

/**
 * What a working-tree file hashes to as a blob (a symlink as its target), or null when it
 * is missing or not a file. Synchronous: used on the few files whose stat data is not enough.
 */
export function hashWorktreeFile(absPath: string): string | null {
  try {
    const stats = nodeFs.lstatSync(absPath);
    if (stats.isSymbolicLink()) return blobOid(Buffer.from(nodeFs.readlinkSync(absPath, 'utf8').replace(/\\/g, '/'), 'utf8'));
    if (!stats.isFile()) return null;
    return blobOid(nodeFs.readFileSync(absPath));
  } catch {
    return null;
  }
}

/** Milliseconds of an entry's mtime, as a float comparable with `Stats.mtimeMs`. */
export function entryMtimeMs(e: IndexEntry): number {
  return e.mtimeS * 1000 + e.mtimeNs / 1e6;
}

/**
 * True when the stat data recorded in `e` still describes the file with `stats`, so its
 * content is the entry's blob unless the entry is racily clean. Times are compared to the
 * microsecond: isomorphic-git derives nanoseconds from a float, git stores them exactly.
 */
export function statMatches(e: IndexEntry, stats: Stats): boolean {
  if (indexMode(stats) !== e.mode) return false;
  if (stats.size % MAX_UINT32 !== e.size) return false;
  if (stats.ino % MAX_UINT32 !== e.ino) return false;
  const [mS, mNs] = secondsNanoseconds(stats.mtimeMs);
  if (mS !== e.mtimeS || Math.abs(mNs - e.mtimeNs) > 1000) return false;
  const [cS, cNs] = secondsNanoseconds(stats.ctimeMs);
  if (cS !== e.ctimeS || Math.abs(cNs - e.ctimeNs) > 1000) return false;
  return true;
}

/** True for an entry whose file may have changed within the same clock tick as the index write (racy git). */
export function isRacy(e: IndexEntry, indexStat: Stats | null): boolean {
  return indexStat === null || entryMtimeMs(e) >= indexStat.mtimeMs - 0.001;
}

export const ENTRY_INTENT_TO_ADD = INTENT_TO_ADD;
export const ENTRY_SKIP_WORKTREE = SKIP_WORKTREE;
