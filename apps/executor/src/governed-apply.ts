import { existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadAll as loadAllYaml } from 'js-yaml';
import type ts from 'typescript';
import type { BuilderEdit } from '@app/contracts';
import { requireWithCodeCache } from './code-cache.js';

/** Limits of one attempt's edits; defaults are generous for real work and small for abuse. */
export interface ApplyLimits {
  maxEdits: number;
  maxFileBytes: number;
  maxTotalBytes: number;
  /** A file with more lines than this is shown with line numbers and may only be changed with `edit`. */
  maxLinesForReplace: number;
}

/** Default apply limits. */
export const DEFAULT_APPLY_LIMITS: ApplyLimits = { maxEdits: 200, maxFileBytes: 1_000_000, maxTotalBytes: 5_000_000, maxLinesForReplace: 400 };

/** What an attempt may touch. */
export interface ApplyPolicy {
  /** Allowed paths; an entry ending in `/` or naming a directory allows everything below it. Empty = anywhere. */
  scopePaths: string[];
  /** Never writable (the run's protected paths plus built-ins). */
  protectedPaths: string[];
  allowMassDeletion: boolean;
  allowMassAddition: boolean;
  limits: ApplyLimits;
}

/** Paths the executor never lets a model write, whatever the run says. */
export const BUILTIN_PROTECTED_PATHS = ['.git/', '.autopack/', 'node_modules/'];

/** A refused attempt: every problem found, before anything was written. */
export class EditRefusedError extends Error {
  readonly code = 'EDIT_REFUSED';
  constructor(readonly problems: string[]) {
    super(`edits refused: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ''}`);
    this.name = 'EditRefusedError';
  }
}

/** One file's planned change: its bytes before and after (null = absent). */
export interface PlannedFile {
  path: string;
  before: string | null;
  after: string | null;
}

/** The validated plan of an attempt: final contents of every touched file. */
export interface ApplyPlan {
  files: PlannedFile[];
  written: string[];
  deleted: string[];
}

const lines = (s: string) => (s.length === 0 ? 0 : s.split('\n').length - (s.endsWith('\n') ? 1 : 0));
const normalizeEol = (s: string) => s.replace(/\r\n/g, '\n');

function isUnder(p: string, entry: string): boolean {
  const e = entry.replace(/\/+$/, '');
  return p === e || p.startsWith(`${e}/`);
}

/**
 * Checks a model-supplied path without touching the file system beyond lstat: relative,
 * `/`-separated, no `..`, never `.git` in any spelling, and inside the workspace.
 */
export function checkPathSyntax(p: string): string | null {
  if (p.length === 0 || p.length > 1000) return 'empty or overlong path';
  if (p.includes('\0')) return 'NUL byte in path';
  if (p.includes('\\')) return 'backslash in path (use "/")';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.startsWith('~')) return 'absolute path';
  const segments = p.split('/');
  if (segments.some((s) => s === '..')) return 'path escapes the workspace ("..")';
  if (segments.some((s) => s === '' || s === '.')) return 'empty or "." path segment';
  // .git, .GIT, ".git " and 8.3 short names like GIT~1 all reach the repository metadata on some systems.
  if (segments.some((s) => /^\.git[\s.]*$/i.test(s) || /^git~\d+$/i.test(s))) return 'writes into .git are not allowed';
  return null;
}

/**
 * Refuses any path whose existing components include a symlink (a link could point outside
 * the workspace or into .git) or a non-directory, and checks the real location stays inside
 * the workspace.
 */
export function checkPathOnDisk(root: string, p: string): string | null {
  const realRoot = realpathSync(root);
  const segments = p.split('/');
  let current = root;
  for (const [i, segment] of segments.entries()) {
    current = path.join(current, segment);
    if (!existsSync(current) && !isDanglingLink(current)) break;
    const st = lstatSync(current);
    if (st.isSymbolicLink()) return `path goes through a symlink (${path.relative(root, current)})`;
    if (i < segments.length - 1 && !st.isDirectory()) return `${path.relative(root, current)} is not a directory`;
  }
  let probe = path.join(root, p);
  while (!existsSync(probe)) probe = path.dirname(probe);
  const real = realpathSync(probe);
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return 'path resolves outside the workspace';
  return null;
}

function isDanglingLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function readText(root: string, p: string): string | null {
  const abs = path.join(root, p);
  if (!existsSync(abs)) return null;
  const st = lstatSync(abs);
  if (!st.isFile()) return null;
  return readFileSync(abs, 'utf8');
}

/** The script kind of each checked extension (ts.ScriptKind names). */
const SCRIPT_KINDS: Record<string, 'TS' | 'TSX' | 'JS' | 'JSX'> = {
  '.ts': 'TS',
  '.mts': 'TS',
  '.cts': 'TS',
  '.tsx': 'TSX',
  '.js': 'JS',
  '.mjs': 'JS',
  '.cjs': 'JS',
  '.jsx': 'JSX',
};

/**
 * The TypeScript parser, loaded on the first script checked rather than at start: loading it
 * takes about half a second and 60 MiB, and most attempts of many runs never need it. It is
 * compiled with V8's code cache (code-cache.ts), which cuts most of that half second.
 */
let typescript: typeof ts | undefined;
function parser(): typeof ts {
  typescript ??= requireWithCodeCache('typescript', import.meta.url) as typeof ts;
  return typescript;
}

/** The first syntax error of a TypeScript/JavaScript source (parse only, no type check), or null. */
function scriptSyntaxError(p: string, content: string, kind: keyof typeof ts.ScriptKind): string | null {
  const t = parser();
  const source = t.createSourceFile(p, content, t.ScriptTarget.Latest, false, t.ScriptKind[kind]);
  // parseDiagnostics is not in the public typings but is how the parser reports syntax errors.
  const diagnostics = (source as unknown as { parseDiagnostics?: ts.Diagnostic[] }).parseDiagnostics ?? [];
  const first = diagnostics[0];
  if (!first) return null;
  const { line, character } = source.getLineAndCharacterOfPosition(first.start ?? 0);
  return `syntax error at line ${line + 1}, column ${character + 1}: ${t.flattenDiagnosticMessageText(first.messageText, ' ')}`;
}

/** The first content problem of a file (conflict markers, invalid JSON/YAML, TS/JS syntax), or null. */
export function checkContent(p: string, content: string): string | null {
  if (/^(<{7}|>{7})( |$)/m.test(content) || /^={7}$/m.test(content)) return `${p}: contains merge conflict markers`;
  const ext = path.extname(p).toLowerCase();
  if (ext === '.json') {
    try {
      JSON.parse(content);
    } catch (err) {
      return `${p}: invalid JSON (${(err as Error).message})`;
    }
  }
  if (ext === '.yml' || ext === '.yaml') {
    try {
      loadAllYaml(content);
    } catch (err) {
      return `${p}: invalid YAML (${(err as Error).message.split('\n')[0]})`;
    }
  }
  const kind = SCRIPT_KINDS[ext];
  if (kind !== undefined) {
    const error = scriptSyntaxError(p, content, kind);
    if (error) return `${p}: ${error}`;
  }
  return null;
}

/**
 * The content problem this change introduces, or null. A file that already had a problem
 * before the change (an already-broken source, a fixture with conflict markers) is not held
 * to it: refusing would block the very edits that could repair it.
 */
export function checkContentChange(p: string, after: string, origin: FileOrigin | null): string | null {
  const problem = checkContent(p, after);
  if (problem && origin !== null && checkContent(origin.path, origin.content) !== null) return null;
  return problem;
}

/** Where a planned file's content comes from: its own previous bytes, or a renamed source's. */
export interface FileOrigin {
  path: string;
  content: string;
}

/**
 * Validates every edit of an attempt against the workspace and the policy, and computes the
 * final content of every touched file. Nothing is written here: a single problem refuses
 * the whole attempt, so a bad attempt can never leave a half-applied change behind.
 */
export function planEdits(root: string, edits: BuilderEdit[], policy: ApplyPolicy): ApplyPlan {
  const problems: string[] = [];
  if (edits.length > policy.limits.maxEdits) throw new EditRefusedError([`too many edits (${edits.length} > ${policy.limits.maxEdits})`]);
  const state = new Map<string, { before: string | null; after: string | null; origin: FileOrigin | null }>();
  const current = (p: string) => {
    if (!state.has(p)) {
      const text = readText(root, p);
      state.set(p, { before: text, after: text, origin: text === null ? null : { path: p, content: text } });
    }
    return state.get(p)!;
  };
  const protectedPaths = [...BUILTIN_PROTECTED_PATHS, ...policy.protectedPaths];

  const checkPath = (p: string): boolean => {
    const syntax = checkPathSyntax(p);
    if (syntax) return problems.push(`${p}: ${syntax}`) < 0;
    const disk = checkPathOnDisk(root, p);
    if (disk) return problems.push(`${p}: ${disk}`) < 0;
    if (protectedPaths.some((entry) => isUnder(p, entry))) return problems.push(`${p}: protected path`) < 0;
    if (policy.scopePaths.length > 0 && !policy.scopePaths.some((entry) => isUnder(p, entry))) {
      return problems.push(`${p}: outside the phase scope (${policy.scopePaths.join(', ')})`) < 0;
    }
    const abs = path.join(root, p);
    if (existsSync(abs) && !lstatSync(abs).isFile()) return problems.push(`${p}: not a regular file`) < 0;
    return true;
  };

  edits.forEach((edit, i) => {
    const where = `edit ${i + 1} (${edit.action} ${edit.path})`;
    if (!checkPath(edit.path)) return;
    const file = current(edit.path);
    switch (edit.action) {
      case 'create':
        if (file.after !== null) problems.push(`${where}: file already exists (use "replace" or "edit")`);
        else file.after = edit.content;
        break;
      case 'replace': {
        if (file.after === null) {
          problems.push(`${where}: file does not exist (use "create")`);
          break;
        }
        const oldLines = lines(file.after);
        const newLines = lines(edit.content);
        if (oldLines > policy.limits.maxLinesForReplace) {
          problems.push(`${where}: file has ${oldLines} lines; large files must be changed with anchored "edit" actions, not replaced`);
        } else if (oldLines >= 10 && newLines < oldLines * 0.4 && !policy.allowMassDeletion) {
          problems.push(`${where}: would shrink the file from ${oldLines} to ${newLines} lines (more than 60%); looks truncated`);
        } else if (oldLines >= 10 && newLines > oldLines * 3 && !policy.allowMassAddition) {
          problems.push(`${where}: would grow the file from ${oldLines} to ${newLines} lines (more than 3x)`);
        } else {
          file.after = edit.content;
        }
        break;
      }
      case 'edit': {
        if (file.after === null) {
          problems.push(`${where}: file does not exist`);
          break;
        }
        const crlf = file.after.includes('\r\n');
        const text = normalizeEol(file.after);
        const search = normalizeEol(edit.search);
        const first = text.indexOf(search);
        if (first < 0) {
          problems.push(`${where}: search text not found`);
          break;
        }
        if (text.indexOf(search, first + 1) >= 0) {
          problems.push(`${where}: search text matches more than once; include more context`);
          break;
        }
        const next = text.slice(0, first) + normalizeEol(edit.replace) + text.slice(first + search.length);
        file.after = crlf ? next.replace(/\n/g, '\r\n') : next;
        break;
      }
      case 'delete':
        if (file.after === null) problems.push(`${where}: file does not exist`);
        else if (lines(file.after) >= 10 && !policy.allowMassDeletion && policy.limits.maxLinesForReplace < lines(file.after)) {
          problems.push(`${where}: deleting a large file needs allow_mass_deletion`);
        } else file.after = null;
        break;
      case 'rename': {
        if (!checkPath(edit.new_path)) break;
        const target = current(edit.new_path);
        if (file.after === null) problems.push(`${where}: source does not exist`);
        else if (target.after !== null) problems.push(`${where}: target ${edit.new_path} already exists`);
        else {
          target.after = file.after;
          target.origin = file.origin;
          file.after = null;
        }
        break;
      }
    }
  });

  let total = 0;
  for (const [p, f] of state) {
    if (f.after === null || f.after === f.before) continue;
    const bytes = Buffer.byteLength(f.after);
    total += bytes;
    if (bytes > policy.limits.maxFileBytes) problems.push(`${p}: ${bytes} bytes exceeds the ${policy.limits.maxFileBytes}-byte file limit`);
    else {
      const bad = checkContentChange(p, f.after, f.origin);
      if (bad) problems.push(bad);
    }
  }
  if (total > policy.limits.maxTotalBytes) problems.push(`edits write ${total} bytes, above the ${policy.limits.maxTotalBytes}-byte limit`);
  if (problems.length > 0) throw new EditRefusedError(problems);

  const files = [...state].filter(([, f]) => f.after !== f.before).map(([p, f]) => ({ path: p, before: f.before, after: f.after }));
  return { files, written: files.filter((f) => f.after !== null).map((f) => f.path), deleted: files.filter((f) => f.after === null).map((f) => f.path) };
}

/** Undo information for an applied plan. */
export interface AppliedChange {
  plan: ApplyPlan;
  createdDirs: string[];
  snapshots: Map<string, Buffer | null>;
}

/** Writes a validated plan to the working copy, keeping the exact previous bytes for restore. */
export function applyPlan(root: string, plan: ApplyPlan): AppliedChange {
  const snapshots = new Map<string, Buffer | null>();
  const createdDirs: string[] = [];
  for (const f of plan.files) {
    const abs = path.join(root, f.path);
    snapshots.set(f.path, existsSync(abs) ? readFileSync(abs) : null);
  }
  const change: AppliedChange = { plan, createdDirs, snapshots };
  try {
    for (const f of plan.files) {
      const abs = path.join(root, f.path);
      if (f.after === null) {
        rmSync(abs, { force: true });
        continue;
      }
      const dirs: string[] = [];
      for (let d = path.dirname(abs); !existsSync(d); d = path.dirname(d)) dirs.unshift(d);
      for (const d of dirs) {
        mkdirSync(d);
        createdDirs.push(d);
      }
      writeFileSync(abs, f.after);
    }
  } catch (err) {
    restoreChange(root, change);
    throw err;
  }
  return change;
}

/** Restores the working copy byte for byte to what it was before `applyPlan`. */
export function restoreChange(root: string, change: AppliedChange): void {
  for (const [p, bytes] of change.snapshots) {
    const abs = path.join(root, p);
    if (bytes === null) rmSync(abs, { force: true });
    else {
      mkdirSync(path.dirname(abs), { recursive: true });
      writeFileSync(abs, bytes);
    }
  }
  for (const d of [...change.createdDirs].reverse()) {
    try {
      rmdirSync(d);
    } catch {
      // not empty (a file the attempt did not create lives there): leave it
    }
  }
}
