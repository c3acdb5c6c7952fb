import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** One file shown to the Builder. */
export interface ContextFile {
  path: string;
  content: string;
  /** May the model change it (in scope)? */
  editable: boolean;
  /** Shown with line numbers; must be changed with anchored edits. */
  large: boolean;
  lines: number;
  /**
   * Part of the neighbourhood of the phase's directories (what consecutive phases working in
   * the same directories see alike) and unchanged by the run so far (as on the run's base
   * branch; taken as unchanged when that is not known): it belongs to the prompt's cacheable
   * prefix. Files only this phase names (scope or read-only paths outside those directories'
   * first files) and files the run changed are not stable.
   */
  stable: boolean;
  /** Changed (added or modified) by the run so far. */
  changed: boolean;
}

/** The Builder's view of the workspace. */
export interface BuilderContext {
  files: ContextFile[];
  /** Scope paths that do not exist yet (the phase may create them). */
  missing: string[];
  /** Files left out, with why (budget, binary, deny-listed). */
  omitted: { path: string; reason: string }[];
  estimatedTokens: number;
}

/** Directories never shown to a model. */
export const DENIED_DIRS = new Set(['.git', 'node_modules', 'dist', 'build', 'out', 'coverage', '.autopack', 'vendor', 'third_party', '.next', '.cache', '__pycache__', '.venv', 'venv', 'target']);

const estimate = (s: string) => Math.ceil(s.length / 4);

function isBinary(buf: Buffer): boolean {
  const n = Math.min(buf.length, 8000);
  for (let i = 0; i < n; i++) if (buf[i] === 0) return true;
  return false;
}

function walk(root: string, rel: string, out: string[], limit: number): void {
  if (out.length >= limit) return;
  const abs = path.join(root, rel);
  if (!existsSync(abs)) return;
  const st = lstatSync(abs);
  if (st.isSymbolicLink()) return;
  if (st.isFile()) {
    out.push(rel);
    return;
  }
  if (!st.isDirectory()) return;
  for (const name of readdirSync(abs).sort()) {
    if (DENIED_DIRS.has(name)) continue;
    walk(root, rel ? `${rel}/${name}` : name, out, limit);
    if (out.length >= limit) return;
  }
}

/**
 * Builds the Builder's context: files in the phase scope first, then read-only context,
 * then neighbours of scoped files, within a token budget. A file the model may change is
 * never truncated: if it is large it is shown whole with line numbers and the model must
 * use anchored `edit`s; if it does not fit the budget it is left out and named as omitted.
 */
export function buildContext(opts: {
  root: string;
  scopePaths: string[];
  readOnlyPaths: string[];
  tokenBudget: number;
  largeFileLines: number;
  maxFileBytes?: number;
  /** Files the run has changed since its base, with how (`changedFilesBetween`); unknown: none. */
  changedInRun?: ReadonlyMap<string, 'added' | 'modified' | 'removed'>;
}): BuilderContext {
  const maxBytes = opts.maxFileBytes ?? 400_000;
  const files: ContextFile[] = [];
  const omitted: { path: string; reason: string }[] = [];
  const missing: string[] = [];
  const seen = new Set<string>();
  let used = 0;

  const add = (rel: string, editable: boolean) => {
    if (seen.has(rel)) return;
    seen.add(rel);
    if (rel.split('/').some((s) => DENIED_DIRS.has(s))) return omitted.push({ path: rel, reason: 'deny-listed directory' });
    const abs = path.join(opts.root, rel);
    const st = lstatSync(abs);
    if (st.size > maxBytes) return omitted.push({ path: rel, reason: `larger than ${maxBytes} bytes` });
    const buf = readFileSync(abs);
    if (isBinary(buf)) return omitted.push({ path: rel, reason: 'binary' });
    const content = buf.toString('utf8');
    const lineCount = content.split('\n').length;
    const large = lineCount > opts.largeFileLines;
    const shown = large ? content.split('\n').map((l, i) => `${String(i + 1).padStart(5)}| ${l}`).join('\n') : content;
    const cost = estimate(shown) + 20;
    if (used + cost > opts.tokenBudget) return omitted.push({ path: rel, reason: 'context token budget' });
    used += cost;
    files.push({ path: rel, content: shown, editable, large, lines: lineCount, stable: false, changed: opts.changedInRun?.has(rel) ?? false });
  };

  const expand = (entries: string[], editable: boolean) => {
    for (const entry of entries) {
      const rel = entry.replace(/\/+$/, '');
      if (!existsSync(path.join(opts.root, rel))) {
        if (editable) missing.push(entry);
        continue;
      }
      const found: string[] = [];
      walk(opts.root, rel, found, 500);
      for (const f of found) add(f, editable);
    }
  };
  expand(opts.scopePaths, true);
  expand(opts.readOnlyPaths, false);
  // Neighbours: siblings of scoped files give the model local conventions, budget permitting.
  const dirs = new Set(opts.scopePaths.map((p) => path.posix.dirname(p.replace(/\/+$/, ''))).filter((d) => d !== '.'));
  if (opts.scopePaths.length === 0) dirs.add('');
  // A directory's first 50 files as the run found them, and the files the run added among
  // them: files an earlier phase creates do not push the directory's other files out.
  const added = (f: string) => opts.changedInRun?.get(f) === 'added';
  const neighbourhood = new Set<string>();
  for (const dir of dirs) {
    const found: string[] = [];
    walk(opts.root, dir === '.' ? '' : dir, found, 50 + [...(opts.changedInRun?.entries() ?? [])].filter(([p, how]) => how === 'added' && (dir === '' || p.startsWith(`${dir}/`))).length);
    let kept = 0;
    const window = found.filter((f) => (added(f) ? kept < 50 : kept++ < 50));
    for (const f of window) neighbourhood.add(f);
    for (const f of window.filter((f) => !seen.has(f))) add(f, opts.scopePaths.length === 0);
  }
  for (const f of files) f.stable = neighbourhood.has(f.path) && !f.changed;
  return { files, missing, omitted, estimatedTokens: used };
}

/** The planner's view of the workspace: which files there are and how big, not what they say. */
export interface RepositoryMap {
  /** Repository-relative paths, sorted, with their sizes in bytes. */
  files: { path: string; bytes: number }[];
  /** More files exist than the map lists (it stops at `maxFiles`). */
  truncated: boolean;
}

/**
 * Maps the workspace for the planner: every file outside the deny-listed directories (the
 * same ones no model ever sees), in path order, up to `maxFiles`. An empty repository maps
 * to no files. Symlinks are skipped, as in the builder's context.
 */
export function repositoryMap(root: string, opts: { maxFiles?: number } = {}): RepositoryMap {
  const maxFiles = opts.maxFiles ?? 300;
  const found: string[] = [];
  walk(root, '', found, maxFiles + 1);
  return {
    files: found.slice(0, maxFiles).map((p) => ({ path: p, bytes: lstatSync(path.join(root, p)).size })),
    truncated: found.length > maxFiles,
  };
}
