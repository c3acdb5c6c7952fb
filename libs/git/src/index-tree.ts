/**
 * Trees from the index without isomorphic-git's full rebuild: hashing the index's trees in
 * memory (to compare the index with HEAD by root id, as git's cache tree lets it), and
 * writing a commit's tree by rewriting only the trees on the changed paths of its parent's.
 */
import { createHash } from 'node:crypto';
import { ENTRY_INTENT_TO_ADD, type IndexEntry } from './index-file.js';
import { readTreeEntries, treeBytes, writeObject, type TreeEntry } from './objects.js';

export const EMPTY_TREE_OID = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/** A directory of the index: its children in index (= git tree) order, and its tree id once hashed. */
export interface IndexDir {
  children: Map<string, IndexDir | IndexEntry>;
  oid?: string;
}

export function isDir(node: IndexDir | IndexEntry): node is IndexDir {
  return (node as IndexDir).children !== undefined;
}

/**
 * The index as a directory tree. Entries must be sorted as in the index; then the order in
 * which each directory first sees its children is git's tree order too (a directory `a`
 * sorts as `a/` both ways). Intent-to-add entries are left out, as from a commit.
 */
export function indexDirs(entries: IndexEntry[]): IndexDir {
  const root: IndexDir = { children: new Map() };
  let lastDir = '';
  let lastNode = root;
  for (const e of entries) {
    if (e.extFlags & ENTRY_INTENT_TO_ADD) continue;
    const slash = e.path.lastIndexOf('/');
    const dirPath = slash < 0 ? '' : e.path.slice(0, slash);
    let node: IndexDir;
    if (dirPath === lastDir) node = lastNode;
    else {
      node = root;
      if (dirPath !== '') {
        for (const segment of dirPath.split('/')) {
          let child = node.children.get(segment);
          if (child === undefined || !isDir(child)) {
            // A file and a directory of the same name cannot both be committed; the directory wins, as on disk.
            child = { children: new Map() };
            node.children.set(segment, child);
          }
          node = child;
        }
      }
      lastDir = dirPath;
      lastNode = node;
    }
    node.children.set(slash < 0 ? e.path : e.path.slice(slash + 1), e);
  }
  return root;
}

/**
 * Hashes every directory of `node` as git would write it, storing the ids in `oid`. Returns
 * the root's id. `buffer` is the index file the entries were read from: their binary ids are
 * taken from it. Each tree is built as one latin1 string (a byte per character), which costs
 * far less than a buffer per entry.
 */
export function hashIndexDirs(node: IndexDir, buffer: Buffer): string {
  return Buffer.from(hashDir(node, buffer), 'latin1').toString('hex');
}

const NON_ASCII = /[\u0080-\uffff]/;

function hashDir(node: IndexDir, buffer: Buffer): string {
  let body = '';
  for (const [name, child] of node.children) {
    const bytes = !NON_ASCII.test(name) ? name : Buffer.from(name, 'utf8').toString('latin1');
    if (isDir(child)) body += `40000 ${bytes}\0${hashDir(child, buffer)}`;
    else {
      const oid = child.start >= 0 ? buffer.toString('latin1', child.start + 40, child.start + 60) : Buffer.from(child.oid, 'hex').toString('latin1');
      body += `${child.mode.toString(8)} ${bytes}\0${oid}`;
    }
  }
  const digest = createHash('sha1').update(`tree ${body.length}\0${body}`, 'latin1').digest();
  node.oid = digest.toString('hex');
  return digest.toString('latin1');
}

async function readTree(dir: string, oid: string | null, cache: object): Promise<TreeEntry[]> {
  return oid === null ? [] : readTreeEntries(dir, oid, cache);
}

/** Every file path under the tree `oid`, prefixed with `prefix`. */
async function listTreeFiles(dir: string, oid: string, prefix: string, cache: object, out: string[]): Promise<void> {
  for (const e of await readTree(dir, oid, cache)) {
    if (e.type === 'tree') await listTreeFiles(dir, e.oid, `${prefix}${e.path}/`, cache, out);
    else if (e.type === 'blob') out.push(`${prefix}${e.path}`);
  }
}

function listIndexFiles(node: IndexDir, prefix: string, out: string[]): void {
  for (const [name, child] of node.children) {
    if (isDir(child)) listIndexFiles(child, `${prefix}${name}/`, out);
    else if (child.mode !== 0o160000) out.push(`${prefix}${name}`);
  }
}

/**
 * The files whose index blob differs from the tree `headTree` (staged changes), skipping
 * identical subtrees by id. Modes are not compared and submodules are skipped, as in the
 * working-tree comparison. `node` must have been hashed with {@link hashIndexDirs}.
 */
export async function stagedChanges(dir: string, node: IndexDir, headTree: string | null, cache: object, prefix = '', out: string[] = []): Promise<string[]> {
  if (headTree !== null && node.oid === headTree) return out;
  const head = new Map((await readTree(dir, headTree, cache)).map((e) => [e.path, e]));
  for (const [name, child] of node.children) {
    const h = head.get(name);
    head.delete(name);
    const p = `${prefix}${name}`;
    if (isDir(child)) {
      if (h?.type === 'tree') await stagedChanges(dir, child, h.oid, cache, `${p}/`, out);
      else {
        if (h?.type === 'blob') out.push(p);
        listIndexFiles(child, `${p}/`, out);
      }
      continue;
    }
    if (child.mode === 0o160000 || h?.type === 'commit') continue;
    if (h?.type === 'tree') {
      out.push(p);
      await listTreeFiles(dir, h.oid, `${p}/`, cache, out);
    } else if (h === undefined || h.oid !== child.oid) out.push(p);
  }
  for (const h of head.values()) {
    if (h.type === 'blob') out.push(`${prefix}${h.path}`);
    else if (h.type === 'tree') await listTreeFiles(dir, h.oid, `${prefix}${h.path}/`, cache, out);
  }
  return out;
}

/** A change to commit: the new blob and mode at a path, or `null` to delete the path (a directory with all it holds). */
export type TreeChange = { oid: string; mode: string } | null;

/**
 * Writes the tree that is `base` with `changes` applied (repo-relative paths), reading and
 * writing only the trees on the changed paths; every other subtree keeps its id. A file
 * written where a directory was replaces it, and a directory written through a file
 * replaces the file, as on disk. Trees left empty are dropped. Returns the root tree id.
 */
export async function rewriteTree(dir: string, base: string | null, changes: Map<string, TreeChange>, cache: object): Promise<string> {
  return (await rewriteSubtree(dir, base, [...changes], cache, true))!;
}

async function rewriteSubtree(
  dir: string,
  base: string | null,
  changes: Array<[string, TreeChange]>,
  cache: object,
  root: boolean,
): Promise<string | null> {
  const entries = await readTree(dir, base, cache);
  const byName = new Map(entries.map((e) => [e.path, e]));
  const nested = new Map<string, Array<[string, TreeChange]>>();
  for (const [p, change] of changes) {
    const slash = p.indexOf('/');
    if (slash < 0) {
      if (change === null) byName.delete(p);
      else byName.set(p, { mode: change.mode, path: p, oid: change.oid, type: 'blob' });
      continue;
    }
    const name = p.slice(0, slash);
    let list = nested.get(name);
    if (list === undefined) nested.set(name, (list = []));
    list.push([p.slice(slash + 1), change]);
  }
  for (const [name, list] of nested) {
    const existing = byName.get(name);
    const writes = list.some(([, c]) => c !== null);
    // Only deletions below a file or a submodule: there is nothing there to delete.
    if (existing !== undefined && existing.type !== 'tree' && !writes) continue;
    const oid = await rewriteSubtree(dir, existing?.type === 'tree' ? existing.oid : null, list, cache, false);
    if (oid === null) byName.delete(name);
    else byName.set(name, { mode: '040000', path: name, oid, type: 'tree' });
  }
  if (byName.size === 0 && !root) return null;
  if (base !== null && changes.length > 0 && sameEntries(entries, byName)) return base;
  return writeObject(dir, 'tree', treeBytes([...byName.values()]));
}

function sameEntries(before: TreeEntry[], after: Map<string, TreeEntry>): boolean {
  if (before.length !== after.size) return false;
  return before.every((e) => {
    const a = after.get(e.path);
    return a !== undefined && a.oid === e.oid && a.mode === e.mode;
  });
}
