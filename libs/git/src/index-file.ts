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
 * The bytes and stat data of `dir`'s index file, read the one way both readers need: `missing`
 * when there is none, null when it is not an index file this module reads (no git directory,
 * too short, no `DIRC` signature).
 */
function readIndexBytes(dir: string): { buf: Buffer; stat: Stats } | 'missing' | null {
  const gitDir = gitDirOf(dir);
  if (gitDir === null) return null;
  const file = path.join(gitDir, 'index');
  let buf: Buffer;
  let stat: Stats;
  try {
    stat = nodeFs.lstatSync(file);
    buf = nodeFs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
  if (buf.length < 32 || buf.toString('latin1', 0, 4) !== 'DIRC') return null;
  return { buf, stat };
}

/**
 * Reads `dir`'s index. Returns `null` when the fast path cannot handle it (see the module
 * comment); a missing index file reads as an empty index.
 */
export function readIndexFile(dir: string): IndexFile | null {
  const read = readIndexBytes(dir);
  if (read === null) return null;
  if (read === 'missing') return { entries: [], buffer: Buffer.alloc(0), stat: null };
  const { buf, stat } = read;
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
    entries[i] = decodeAt(buf, start, off, filepath, extFlags);
  }
  return { entries, buffer: buf, stat };
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

export function encodeEntry(e: IndexEntry): Buffer {
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
  return sameTime(stats.mtimeMs, e.mtimeS, e.mtimeNs) && sameTime(stats.ctimeMs, e.ctimeS, e.ctimeNs);
}

/** True when `ms` is `seconds` + `nanoseconds` (as stored, modulo 2^32) to the microsecond. */
function sameTime(ms: number, seconds: number, nanoseconds: number): boolean {
  const s = Math.floor(ms / 1000);
  return s % MAX_UINT32 === seconds && Math.abs(Math.floor((ms - s * 1000) * 1000000) - nanoseconds) <= 1000;
}

/** True for an entry whose file may have changed within the same clock tick as the index write (racy git). */
export function isRacy(e: IndexEntry, indexStat: Stats | null): boolean {
  return indexStat === null || entryMtimeMs(e) >= indexStat.mtimeMs - 0.001;
}

export const ENTRY_INTENT_TO_ADD = INTENT_TO_ADD;
export const ENTRY_SKIP_WORKTREE = SKIP_WORKTREE;

/**
 * The index as bytes and entry offsets only, for writers that change a few entries: no
 * object or string is made per entry. As git does by default (only fsck verifies it), the
 * trailing checksum is not verified; the structure is.
 */
export interface RawIndex {
  buffer: Buffer;
  count: number;
  /** Start of entry i; `offsets[count]` is where the entries end. */
  offsets: Int32Array;
  /** Where each entry's path starts and ends. */
  pathStarts: Int32Array;
  pathEnds: Int32Array;
  anyExtended: boolean;
  stat: Stats | null;
}

/** Reads `dir`'s index raw; `null` when the fast path cannot handle it (as {@link readIndexFile}). */
export function readRawIndex(dir: string): RawIndex | null {
  const read = readIndexBytes(dir);
  if (read === null) return null;
  if (read === 'missing') return { buffer: Buffer.alloc(0), count: 0, offsets: new Int32Array(1), pathStarts: new Int32Array(0), pathEnds: new Int32Array(0), anyExtended: false, stat: null };
  const { buf, stat } = read;
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) return null;
  const count = buf.readUInt32BE(8);
  const offsets = new Int32Array(count + 1);
  const pathStarts = new Int32Array(count);
  const pathEnds = new Int32Array(count);
  let anyExtended = false;
  const limit = buf.length - 20;
  let off = 12;
  for (let i = 0; i < count; i++) {
    if (off + 62 > limit) return null;
    offsets[i] = off;
    const flags = (buf[off + 60] << 8) | buf[off + 61];
    if ((flags & 0x3000) !== 0) return null;
    let p = off + 62;
    if (flags & EXTENDED) {
      if (version < 3) return null;
      const extFlags = (buf[p] << 8) | buf[p + 1];
      if (extFlags & ~(SKIP_WORKTREE | INTENT_TO_ADD)) return null;
      anyExtended = true;
      p += 2;
    }
    const nameLength = flags & 0xfff;
    const end = nameLength < 0xfff ? p + nameLength : buf.indexOf(0, p);
    if (end < p || end >= limit) return null;
    pathStarts[i] = p;
    pathEnds[i] = end;
    off += Math.ceil((end - off + 1) / 8) * 8;
  }
  if (off > limit) return null;
  offsets[count] = off;
  return { buffer: buf, count, offsets, pathStarts, pathEnds, anyExtended, stat };
}

/** The first entry whose path is not before `p` (UTF-8 bytes) in sorted order. */
export function rawLowerBound(raw: RawIndex, p: Buffer): number {
  let lo = 0;
  let hi = raw.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    // compare() < 0: the entry's path (source) sorts before `p` (target).
    if (raw.buffer.compare(p, 0, p.length, raw.pathStarts[mid], raw.pathEnds[mid]) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** True when entry i's path is `p` exactly. */
export function rawPathIs(raw: RawIndex, i: number, p: Buffer): boolean {
  return i < raw.count && raw.pathEnds[i] - raw.pathStarts[i] === p.length && raw.buffer.compare(p, 0, p.length, raw.pathStarts[i], raw.pathEnds[i]) === 0;
}

/** True when entry i's path starts with `prefix`. */
export function rawPathStartsWith(raw: RawIndex, i: number, prefix: Buffer): boolean {
  const start = raw.pathStarts[i];
  return raw.pathEnds[i] - start >= prefix.length && raw.buffer.compare(prefix, 0, prefix.length, start, start + prefix.length) === 0;
}

/** Entry i decoded. */
export function rawEntry(raw: RawIndex, i: number): IndexEntry {
  const start = raw.offsets[i];
  const flags = raw.buffer.readUInt16BE(start + 60);
  const extFlags = flags & EXTENDED ? raw.buffer.readUInt16BE(start + 62) : 0;
  return decodeAt(raw.buffer, start, raw.offsets[i + 1], raw.buffer.toString('utf8', raw.pathStarts[i], raw.pathEnds[i]), extFlags);
}

/** Entry i's mtime in milliseconds, as {@link entryMtimeMs}. */
export function rawMtimeMs(raw: RawIndex, i: number): number {
  const start = raw.offsets[i];
  return raw.buffer.readUInt32BE(start + 8) * 1000 + raw.buffer.readUInt32BE(start + 12) / 1e6;
}

/** What {@link writeRawIndex} changes: entries dropped, entries re-encoded in place, entries inserted before an original position. */
export interface RawIndexEdit {
  removed: Uint8Array;
  replaced: Map<number, IndexEntry>;
  /** Sorted by position, then path. */
  inserted: Array<{ before: number; entry: IndexEntry }>;
}

/** Writes `raw` with `edit` applied as `dir`'s index, atomically; unchanged runs of entries are written as they are. */
export function writeRawIndex(dir: string, raw: RawIndex, edit: RawIndexEdit): void {
  const pieces: Buffer[] = [];
  let count = 0;
  let extended = raw.anyExtended;
  let runStart = -1;
  const flush = (end: number): void => {
    if (runStart >= 0 && end > runStart) pieces.push(raw.buffer.subarray(runStart, end));
    runStart = -1;
  };
  let k = 0;
  for (let i = 0; i <= raw.count; i++) {
    while (k < edit.inserted.length && edit.inserted[k].before === i) {
      flush(raw.offsets[i]);
      const { entry } = edit.inserted[k++];
      if (entry.extFlags) extended = true;
      pieces.push(encodeEntry(entry));
      count++;
    }
    if (i === raw.count) break;
    const replacement = edit.replaced.get(i);
    if (edit.removed[i] || replacement !== undefined) {
      flush(raw.offsets[i]);
      if (!edit.removed[i] && replacement !== undefined) {
        pieces.push(encodeEntry(replacement));
        count++;
      }
      continue;
    }
    if (runStart < 0) runStart = raw.offsets[i];
    count++;
  }
  flush(raw.offsets[raw.count]);
  const header = Buffer.alloc(12);
  header.write('DIRC', 0, 'latin1');
  header.writeUInt32BE(extended ? 3 : 2, 4);
  header.writeUInt32BE(count, 8);
  const hash = createHash('sha1').update(header);
  for (const piece of pieces) hash.update(piece);
  writeGitFileSync(path.join(dir, '.git', 'index'), [header, ...pieces, hash.digest()]);
}
