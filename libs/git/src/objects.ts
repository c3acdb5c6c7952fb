/**
 * Loose objects read and written directly with node's zlib and crypto. isomorphic-git
 * inflates with a JavaScript zlib and deflates through a CompressionStream, which costs
 * milliseconds per object; the commit and clean-check paths read and write a handful of
 * small trees and blobs, so that overhead was most of their time. Objects that are not
 * loose (packed) are read through isomorphic-git.
 */
import { createHash } from 'node:crypto';
import nodeFs from 'node:fs';
import path from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import git from 'isomorphic-git';
import { gitFs as fs, writeGitFileSync } from './git-fs.js';
import { comparePaths } from './index-file.js';

/** A tree entry as isomorphic-git's readTree returns it (trees have mode `040000`). */
export interface TreeEntry {
  mode: string;
  path: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

function objectPath(dir: string, oid: string): string {
  return path.join(dir, '.git', 'objects', oid.slice(0, 2), oid.slice(2));
}

/** The type and content of a loose object, or null when it is not stored loose. Verifies the id. */
function readLoose(dir: string, oid: string): { type: string; content: Buffer } | null {
  let deflated: Buffer;
  try {
    deflated = nodeFs.readFileSync(objectPath(dir, oid));
  } catch {
    return null;
  }
  const wrapped = inflateSync(deflated);
  if (createHash('sha1').update(wrapped).digest('hex') !== oid) throw new Error(`Object ${oid} is corrupt (its content hashes differently)`);
  const space = wrapped.indexOf(0x20);
  const nul = wrapped.indexOf(0, space);
  if (space < 0 || nul < 0) throw new Error(`Object ${oid} has no valid header`);
  return { type: wrapped.toString('latin1', 0, space), content: wrapped.subarray(nul + 1) };
}

/** Mode strings as isomorphic-git normalises them. */
function normalMode(mode: string): string {
  if (mode === '40000' || mode === '040000') return '040000';
  if (mode === '120000' || mode === '160000' || mode === '100755') return mode;
  return '100644';
}

function typeOfMode(mode: string): TreeEntry['type'] {
  return mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : 'blob';
}

function parseTree(content: Buffer): TreeEntry[] {
  const entries: TreeEntry[] = [];
  let off = 0;
  while (off < content.length) {
    const space = content.indexOf(0x20, off);
    const nul = content.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > content.length) throw new Error('Malformed tree object');
    const mode = normalMode(content.toString('latin1', off, space));
    entries.push({ mode, path: content.toString('utf8', space + 1, nul), oid: content.toString('hex', nul + 1, nul + 21), type: typeOfMode(mode) });
    off = nul + 21;
  }
  return entries;
}

/** The entries of tree `oid` (loose objects read directly, packed ones through isomorphic-git). */
export async function readTreeEntries(dir: string, oid: string, cache: object): Promise<TreeEntry[]> {
  const loose = readLoose(dir, oid);
  if (loose === null) return (await git.readTree({ fs, dir, oid, cache })).tree as TreeEntry[];
  if (loose.type !== 'tree') throw new Error(`Object ${oid} is a ${loose.type}, not a tree`);
  return parseTree(loose.content);
}

/** Writes a loose object unless it is already stored loose; returns its id. */
export function writeObject(dir: string, type: 'blob' | 'tree' | 'commit', content: Buffer): string {
  const wrapped = Buffer.concat([Buffer.from(`${type} ${content.length}\0`, 'latin1'), content]);
  const oid = createHash('sha1').update(wrapped).digest('hex');
  const file = objectPath(dir, oid);
  if (nodeFs.existsSync(file)) return oid;
  if (!nodeFs.existsSync(path.dirname(file))) nodeFs.mkdirSync(path.dirname(file), { recursive: true });
  // A temporary file renamed into place, so the object is whole or absent.
  writeGitFileSync(file, deflateSync(wrapped));
  return oid;
}

/** The bytes of a tree object holding `entries`, sorted as git sorts them (a tree `a` as `a/`). */
export function treeBytes(entries: TreeEntry[]): Buffer {
  const key = (e: TreeEntry): string => (e.type === 'tree' ? `${e.path}/` : e.path);
  const sorted = [...entries].sort((a, b) => comparePaths(key(a), key(b)));
  const parts: Buffer[] = [];
  for (const e of sorted) {
    parts.push(Buffer.from(`${e.type === 'tree' ? '40000' : normalMode(e.mode)} ${e.path}\0`, 'utf8'), Buffer.from(e.oid, 'hex'));
  }
  return Buffer.concat(parts);
}

/** The tree id of commit `oid`. */
export async function commitTree(dir: string, oid: string, cache: object): Promise<string> {
  const loose = readLoose(dir, oid);
  if (loose === null) return (await git.readCommit({ fs, dir, oid, cache })).commit.tree;
  const match = loose.type === 'commit' ? /^tree ([0-9a-f]{40})\n/.exec(loose.content.toString('latin1', 0, 46)) : null;
  if (match === null) throw new Error(`Object ${oid} is not a commit`);
  return match[1];
}

/** A commit's author or committer, with the offset in minutes as `Date#getTimezoneOffset` gives it. */
export interface Signature {
  name: string;
  email: string;
  timestamp: number;
  timezoneOffset: number;
}

function formatTimezone(minutes: number): string {
  // As isomorphic-git: the offset is negated, and -0 keeps its sign.
  const negated = minutes === 0 ? minutes : -minutes;
  const sign = Math.sign(negated) || (Object.is(negated, -0) ? -1 : 1);
  const abs = Math.abs(minutes);
  const hours = Math.floor(abs / 60);
  return `${sign === -1 ? '-' : '+'}${String(hours).padStart(2, '0')}${String(abs - hours * 60).padStart(2, '0')}`;
}

function formatSignature(s: Signature): string {
  return `${s.name} <${s.email}> ${s.timestamp} ${formatTimezone(s.timezoneOffset)}`;
}

/** Writes a commit object byte for byte as isomorphic-git's `writeCommit` renders it; returns its id. */
export function writeCommitObject(
  dir: string,
  commit: { tree: string; parent: string[]; author: Signature; committer: Signature; message: string },
): string {
  const message = `${commit.message.replace(/\r/g, '').replace(/^\n+/, '').replace(/\n+$/, '')}\n`;
  const text =
    `tree ${commit.tree}\n` +
    commit.parent.map((p) => `parent ${p}\n`).join('') +
    `author ${formatSignature(commit.author)}\ncommitter ${formatSignature(commit.committer)}\n\n${message}`;
  return writeObject(dir, 'commit', Buffer.from(text, 'utf8'));
}

const OID = /^[0-9a-f]{40}$/;

/**
 * The tip of local branch `branch`, read directly: the loose ref, else its line in
 * `packed-refs`. `null` when the branch does not exist, `undefined` when the ref is
 * something this reader leaves to isomorphic-git (a symbolic ref, an odd file).
 */
export function readBranchTip(dir: string, branch: string): string | null | undefined {
  const ref = `refs/heads/${branch}`;
  try {
    const value = nodeFs.readFileSync(path.join(dir, '.git', ref), 'utf8').trim();
    return OID.test(value) ? value : undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return undefined;
  }
  let packed: string;
  try {
    packed = nodeFs.readFileSync(path.join(dir, '.git', 'packed-refs'), 'utf8');
  } catch {
    return null;
  }
  for (const line of packed.split('\n')) {
    if (line.endsWith(` ${ref}`) && OID.test(line.slice(0, 40)) && line.length === 41 + ref.length) return line.slice(0, 40);
  }
  return null;
}

/** Points local branch `branch` at `oid` (a loose ref, written atomically, as isomorphic-git's writeRef). */
export function writeBranchTip(dir: string, branch: string, oid: string): void {
  const file = path.join(dir, '.git', 'refs', 'heads', ...branch.split('/'));
  if (!nodeFs.existsSync(path.dirname(file))) nodeFs.mkdirSync(path.dirname(file), { recursive: true });
  writeGitFileSync(file, Buffer.from(`${oid}\n`, 'latin1'));
}
