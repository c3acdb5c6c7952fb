import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BuilderEdit } from '@app/contracts';
import { type ApplyPolicy, DEFAULT_APPLY_LIMITS, EditRefusedError, applyPlan, planEdits, restoreChange } from './governed-apply.js';

const scratch: string[] = [];
afterAll(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** A workspace holding `files` (string or exact bytes). */
function workspace(files: Record<string, string | Buffer> = {}): string {
  const root = tempDir('autopack-apply-');
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    writeFileSync(path.join(root, p), content);
  }
  return root;
}

/** Every entry below `dir`: file bytes, symlink targets and directories, to compare trees exactly. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path.join(dir, r));
      if (st.isSymbolicLink()) out[r] = `link -> ${readlinkSync(path.join(dir, r))}`;
      else if (st.isDirectory()) {
        out[`${r}/`] = 'dir';
        walk(r);
      } else out[r] = readFileSync(path.join(dir, r)).toString('base64');
    }
  };
  walk('');
  return out;
}

const policy = (over: Partial<ApplyPolicy> = {}): ApplyPolicy => ({
  scopePaths: [],
  protectedPaths: [],
  allowMassDeletion: false,
  allowMassAddition: false,
  limits: DEFAULT_APPLY_LIMITS,
  ...over,
});

/** The problems planEdits refuses `edits` with; fails the test when it does not refuse, and checks nothing was written. */
function refusal(root: string, edits: BuilderEdit[], p: ApplyPolicy = policy()): string[] {
  const before = snapshot(root);
  let problems: string[] | undefined;
  try {
    planEdits(root, edits, p);
  } catch (err) {
    if (!(err instanceof EditRefusedError)) throw err;
    problems = err.problems;
  }
  expect(snapshot(root)).toEqual(before);
  if (!problems) throw new Error(`expected a refusal of ${JSON.stringify(edits).slice(0, 200)}`);
  return problems;
}

const numbered = (n: number, prefix = 'line') => Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}\n`).join('');

describe('planEdits: paths', () => {
  const root = workspace({ 'src/a.ts': 'export const a = 1;\n' });

  it.each([
    ['../outside.txt', 'path escapes the workspace'],
    ['src/../../outside.txt', 'path escapes the workspace'],
    ['/etc/passwd', 'absolute path'],
    ['C:/Windows/x.txt', 'absolute path'],
    ['~/x.txt', 'absolute path'],
    ['src\\a.ts', 'backslash'],
    ['.git/config', 'writes into .git are not allowed'],
    ['.GIT/config', 'writes into .git are not allowed'],
    ['.Git/hooks/pre-commit', 'writes into .git are not allowed'],
    ['.git./config', 'writes into .git are not allowed'],
    ['.git /config', 'writes into .git are not allowed'],
    ['GIT~1/config', 'writes into .git are not allowed'],
    ['git~1/config', 'writes into .git are not allowed'],
    ['vendor/lib/.git/config', 'writes into .git are not allowed'],
    ['src//a.ts', 'empty or "." path segment'],
    ['./src/a.ts', 'empty or "." path segment'],
  ])('refuses %s', (p, why) => {
    const problems = refusal(root, [{ path: p, action: 'create', content: 'x\n' }]);
    expect(problems).toEqual([expect.stringContaining(why)]);
  });

  it('refuses renames whose target escapes or enters .git', () => {
    expect(refusal(root, [{ path: 'src/a.ts', action: 'rename', new_path: '../a.ts' }])).toEqual([expect.stringContaining('path escapes the workspace')]);
    expect(refusal(root, [{ path: 'src/a.ts', action: 'rename', new_path: '.git/a.ts' }])).toEqual([expect.stringContaining('.git')]);
  });

  it('refuses a path through a symlink pointing outside, a symlinked parent directory, a symlinked file and a dangling link', () => {
    const outside = tempDir('autopack-outside-');
    writeFileSync(path.join(outside, 'secret.txt'), 'outside\n');
    const ws = workspace({ 'docs/readme.md': '# hi\n' });
    symlinkSync(outside, path.join(ws, 'link'));
    mkdirSync(path.join(ws, 'deep'));
    symlinkSync(outside, path.join(ws, 'deep', 'sub'));
    symlinkSync(path.join(outside, 'secret.txt'), path.join(ws, 'file-link.txt'));
    symlinkSync(path.join(outside, 'missing.txt'), path.join(ws, 'dangling.txt'));

    expect(refusal(ws, [{ path: 'link/new.txt', action: 'create', content: 'x\n' }])).toEqual([expect.stringContaining('path goes through a symlink (link)')]);
    expect(refusal(ws, [{ path: 'deep/sub/new.txt', action: 'create', content: 'x\n' }])).toEqual([expect.stringContaining('path goes through a symlink (deep/sub)')]);
    expect(refusal(ws, [{ path: 'file-link.txt', action: 'replace', content: 'pwned\n' }])).toEqual([expect.stringContaining('symlink')]);
    expect(refusal(ws, [{ path: 'dangling.txt', action: 'create', content: 'pwned\n' }])).toEqual([expect.stringContaining('symlink')]);
    expect(snapshot(outside)).toEqual({ 'secret.txt': Buffer.from('outside\n').toString('base64') });
  });

  it('refuses a path under an existing file and a directory as a file', () => {
    const ws = workspace({ 'src/a.ts': 'export {};\n', 'src/dir/b.ts': 'export {};\n' });
    expect(refusal(ws, [{ path: 'src/a.ts/b.ts', action: 'create', content: 'x\n' }])).toEqual([expect.stringContaining('src/a.ts is not a directory')]);
    expect(refusal(ws, [{ path: 'src/dir', action: 'replace', content: 'x\n' }])).toEqual([expect.stringContaining('not a regular file')]);
  });

  it('refuses built-in and run-protected paths', () => {
    const ws = workspace({ 'config/secrets.env': 'A=1\n' });
    expect(refusal(ws, [{ path: 'node_modules/x/index.js', action: 'create', content: 'x\n' }])).toEqual([expect.stringContaining('protected path')]);
    expect(refusal(ws, [{ path: '.autopack/state', action: 'create', content: 'x\n' }])).toEqual([expect.stringContaining('protected path')]);
    expect(refusal(ws, [{ path: 'config/secrets.env', action: 'delete' }], policy({ protectedPaths: ['config/'] }))).toEqual([expect.stringContaining('protected path')]);
    expect(refusal(ws, [{ path: 'config/secrets.env', action: 'delete' }], policy({ protectedPaths: ['config/secrets.env'] }))).toEqual([expect.stringContaining('protected path')]);
  });

  it('applies the scope with exact files and directory prefixes (with or without a trailing slash)', () => {
    const ws = workspace({ 'src/a.ts': 'export {};\n' });
    const scoped = policy({ scopePaths: ['src/', 'test', 'README.md'] });
    const plan = planEdits(
      ws,
      [
        { path: 'src/deep/b.ts', action: 'create', content: 'export {};\n' },
        { path: 'test/b.test.ts', action: 'create', content: 'export {};\n' },
        { path: 'README.md', action: 'create', content: '# x\n' },
      ],
      scoped,
    );
    expect(plan.written.sort()).toEqual(['README.md', 'src/deep/b.ts', 'test/b.test.ts']);
    for (const outsideScope of ['srcx/a.ts', 'testing/a.ts', 'README.md.bak', 'docs/a.md']) {
      expect(refusal(ws, [{ path: outsideScope, action: 'create', content: 'x\n' }], scoped)).toEqual([expect.stringContaining('outside the phase scope')]);
    }
    expect(refusal(ws, [{ path: 'src/a.ts', action: 'rename', new_path: 'lib/a.ts' }], scoped)).toEqual([expect.stringContaining('lib/a.ts: outside the phase scope')]);
  });
});

describe('planEdits: edits', () => {
  it('refuses an edit whose search text matches zero or several times, and one on a missing file', () => {
    const ws = workspace({ 'a.txt': 'one\ntwo\none\n' });
    expect(refusal(ws, [{ path: 'a.txt', action: 'edit', search: 'three', replace: '3' }])).toEqual([expect.stringContaining('search text not found')]);
    expect(refusal(ws, [{ path: 'a.txt', action: 'edit', search: 'one', replace: '1' }])).toEqual([expect.stringContaining('matches more than once')]);
    expect(refusal(ws, [{ path: 'b.txt', action: 'edit', search: 'x', replace: 'y' }])).toEqual([expect.stringContaining('file does not exist')]);
    expect(planEdits(ws, [{ path: 'a.txt', action: 'edit', search: 'one\ntwo', replace: '1\n2' }], policy()).files).toEqual([{ path: 'a.txt', before: 'one\ntwo\none\n', after: '1\n2\none\n' }]);
  });

  it('matches CRLF files with LF search text and keeps their CRLF line endings', () => {
    const ws = workspace({ 'win.txt': 'alpha\r\nbeta\r\ngamma\r\n' });
    const plan = planEdits(ws, [{ path: 'win.txt', action: 'edit', search: 'alpha\nbeta\n', replace: 'alpha\nBETA\nextra\n' }], policy());
    expect(plan.files[0].after).toBe('alpha\r\nBETA\r\nextra\r\ngamma\r\n');
    const change = applyPlan(ws, plan);
    expect(readFileSync(path.join(ws, 'win.txt'), 'utf8')).toBe('alpha\r\nBETA\r\nextra\r\ngamma\r\n');
    restoreChange(ws, change);
    expect(readFileSync(path.join(ws, 'win.txt'), 'utf8')).toBe('alpha\r\nbeta\r\ngamma\r\n');
  });

  it('applies successive edits of one file in order', () => {
    const ws = workspace({ 'a.txt': 'a\nb\nc\n' });
    const plan = planEdits(
      ws,
      [
        { path: 'a.txt', action: 'edit', search: 'a\n', replace: 'A\n' },
        { path: 'a.txt', action: 'edit', search: 'A\nb', replace: 'A\nB' },
      ],
      policy(),
    );
    expect(plan.files[0].after).toBe('A\nB\nc\n');
  });

  it('refuses create over an existing file and replace/delete/rename of a missing one', () => {
    const ws = workspace({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    expect(refusal(ws, [{ path: 'a.txt', action: 'create', content: 'x\n' }])).toEqual([expect.stringContaining('already exists')]);
    expect(refusal(ws, [{ path: 'z.txt', action: 'replace', content: 'x\n' }])).toEqual([expect.stringContaining('does not exist')]);
    expect(refusal(ws, [{ path: 'z.txt', action: 'delete' }])).toEqual([expect.stringContaining('does not exist')]);
    expect(refusal(ws, [{ path: 'z.txt', action: 'rename', new_path: 'y.txt' }])).toEqual([expect.stringContaining('source does not exist')]);
    expect(refusal(ws, [{ path: 'a.txt', action: 'rename', new_path: 'b.txt' }])).toEqual([expect.stringContaining('target b.txt already exists')]);
  });

  it('refuses a replace that shrinks a file by more than 60% unless mass deletion is allowed', () => {
    const ws = workspace({ 'big.txt': numbered(100) });
    expect(refusal(ws, [{ path: 'big.txt', action: 'replace', content: numbered(39) }])).toEqual([expect.stringContaining('would shrink the file from 100 to 39 lines')]);
    expect(planEdits(ws, [{ path: 'big.txt', action: 'replace', content: numbered(40) }], policy()).written).toEqual(['big.txt']);
    expect(planEdits(ws, [{ path: 'big.txt', action: 'replace', content: numbered(5) }], policy({ allowMassDeletion: true })).written).toEqual(['big.txt']);
  });

  it('refuses a replace that grows a file more than 3x unless mass addition is allowed', () => {
    const ws = workspace({ 'small.txt': numbered(10) });
    expect(refusal(ws, [{ path: 'small.txt', action: 'replace', content: numbered(31) }])).toEqual([expect.stringContaining('would grow the file from 10 to 31 lines')]);
    expect(planEdits(ws, [{ path: 'small.txt', action: 'replace', content: numbered(30) }], policy()).written).toEqual(['small.txt']);
    expect(planEdits(ws, [{ path: 'small.txt', action: 'replace', content: numbered(100) }], policy({ allowMassAddition: true })).written).toEqual(['small.txt']);
  });

  it('refuses replacing or deleting a large file, but lets anchored edits change it', () => {
    const ws = workspace({ 'large.txt': numbered(401) });
    expect(refusal(ws, [{ path: 'large.txt', action: 'replace', content: numbered(401, 'LINE') }])).toEqual([expect.stringContaining('large files must be changed with anchored "edit" actions')]);
    expect(refusal(ws, [{ path: 'large.txt', action: 'delete' }])).toEqual([expect.stringContaining('deleting a large file needs allow_mass_deletion')]);
    expect(planEdits(ws, [{ path: 'large.txt', action: 'delete' }], policy({ allowMassDeletion: true })).deleted).toEqual(['large.txt']);
    const plan = planEdits(ws, [{ path: 'large.txt', action: 'edit', search: 'line 200\n', replace: 'line two hundred\n' }], policy());
    expect(plan.files[0].after).toContain('line two hundred\nline 201\n');
  });

  it('refuses too many edits, too large a file and too many bytes in total', () => {
    const ws = workspace();
    const limits = { ...DEFAULT_APPLY_LIMITS, maxEdits: 3, maxFileBytes: 100, maxTotalBytes: 250 };
    const create = (i: number, bytes: number): BuilderEdit => ({ path: `f${i}.txt`, action: 'create', content: 'x'.repeat(bytes - 1) + '\n' });
    expect(refusal(ws, [create(1, 10), create(2, 10), create(3, 10), create(4, 10)], policy({ limits }))).toEqual(['too many edits (4 > 3)']);
    expect(refusal(ws, [create(1, 101)], policy({ limits }))).toEqual(['f1.txt: 101 bytes exceeds the 100-byte file limit']);
    expect(refusal(ws, [create(1, 100), create(2, 100), create(3, 51)], policy({ limits }))).toEqual(['edits write 251 bytes, above the 250-byte limit']);
    expect(planEdits(ws, [create(1, 100), create(2, 100), create(3, 50)], policy({ limits })).written).toHaveLength(3);
  });

  it('reports every problem of an attempt at once', () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const problems = refusal(ws, [
      { path: '../x', action: 'create', content: 'x' },
      { path: 'a.txt', action: 'edit', search: 'zzz', replace: 'y' },
      { path: 'ok.txt', action: 'create', content: 'fine\n' },
    ]);
    expect(problems).toEqual([expect.stringContaining('path escapes'), expect.stringContaining('search text not found')]);
  });
});

describe('planEdits: content checks', () => {
  it('refuses invalid JSON and YAML', () => {
    const ws = workspace({ 'package.json': '{"name": "x"}\n', 'ci.yml': 'a: 1\n' });
    expect(refusal(ws, [{ path: 'package.json', action: 'replace', content: '{"name": "x",}\n' }])).toEqual([expect.stringContaining('package.json: invalid JSON')]);
    expect(refusal(ws, [{ path: 'ci.yml', action: 'edit', search: 'a: 1', replace: 'a: [1' }])).toEqual([expect.stringContaining('ci.yml: invalid YAML')]);
    expect(refusal(ws, [{ path: 'new.yaml', action: 'create', content: 'k: v\n  bad: indent\n' }])).toEqual([expect.stringContaining('invalid YAML')]);
  });

  it('refuses merge conflict markers', () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const conflicted = '<<<<<<< HEAD\nmine\n=======\ntheirs\n>>>>>>> branch\n';
    expect(refusal(ws, [{ path: 'a.txt', action: 'replace', content: conflicted }])).toEqual(['a.txt: contains merge conflict markers']);
  });

  it.each(['ts', 'tsx', 'js', 'jsx', 'mjs', 'cjs', 'mts', 'cts'])('refuses a .%s file that no longer parses', (ext) => {
    const ws = workspace({ [`src/m.${ext}`]: 'export function f(a) {\n  return a + 1;\n}\n' });
    const problems = refusal(ws, [{ path: `src/m.${ext}`, action: 'edit', search: 'return a + 1;\n}', replace: 'return a + 1;\n' }]);
    expect(problems).toEqual([expect.stringMatching(new RegExp(`^src/m\\.${ext}: syntax error at line \\d+, column \\d+: '}' expected`))]);
    expect(refusal(ws, [{ path: `src/new.${ext}`, action: 'create', content: 'const x = {;\n' }])).toEqual([expect.stringContaining('syntax error at line 1')]);
  });

  it('accepts valid TypeScript, TSX and JSX', () => {
    const ws = workspace();
    const plan = planEdits(
      ws,
      [
        { path: 'a.ts', action: 'create', content: 'export const f = <T,>(x: T): T => x;\ninterface I { a?: number }\n' },
        { path: 'b.tsx', action: 'create', content: 'export const C = (p: { n: string }) => <div title={p.n}>hi</div>;\n' },
        { path: 'c.jsx', action: 'create', content: 'export const C = () => <span>ok</span>;\n' },
        { path: 'd.js', action: 'create', content: 'export const C = () => <span>jsx in .js</span>;\n' },
      ],
      policy(),
    );
    expect(plan.written).toHaveLength(4);
  });

  it('does not block edits to (or renames of) files that already had the problem before the change', () => {
    const broken = 'export const x = {;\nexport const y = 1;\n';
    const ws = workspace({ 'src/broken.ts': broken, 'fixtures/conflict.txt': '<<<<<<< ours\na\n=======\nb\n>>>>>>> theirs\n', 'bad.json': '{oops\n' });
    const plan = planEdits(
      ws,
      [
        { path: 'src/broken.ts', action: 'edit', search: 'export const y = 1;', replace: 'export const y = 2;' },
        { path: 'fixtures/conflict.txt', action: 'edit', search: 'a\n', replace: 'A\n' },
        { path: 'bad.json', action: 'replace', content: '{oops, still\n' },
      ],
      policy(),
    );
    expect(plan.written.sort()).toEqual(['bad.json', 'fixtures/conflict.txt', 'src/broken.ts']);
    expect(planEdits(ws, [{ path: 'src/broken.ts', action: 'rename', new_path: 'src/moved.ts' }], policy()).written).toEqual(['src/moved.ts']);
  });

  it('refuses renaming a parsing file to a name under which it does not parse', () => {
    const ws = workspace({ 'notes.txt': 'const x = {;\n' });
    expect(refusal(ws, [{ path: 'notes.txt', action: 'rename', new_path: 'notes.ts' }])).toEqual([expect.stringContaining('notes.ts: syntax error')]);
  });
});

describe('applyPlan and restoreChange', () => {
  it('write the plan, then restore every byte, delete created files and directories, and bring back deleted and renamed files', () => {
    const binary = Buffer.from([0, 1, 2, 255, 254, 13, 10, 0]);
    const ws = workspace({
      'keep/a.txt': 'a\r\nmixed\nendings\r\n',
      'gone.txt': 'to be deleted\n',
      'old/name.txt': 'renamed\n',
      'bin.dat': binary,
      'existing/dir/x.txt': 'x\n',
    });
    const before = snapshot(ws);
    const plan = planEdits(
      ws,
      [
        { path: 'keep/a.txt', action: 'edit', search: 'mixed', replace: 'MIXED' },
        { path: 'gone.txt', action: 'delete' },
        { path: 'old/name.txt', action: 'rename', new_path: 'new/deeper/name.txt' },
        { path: 'fresh/one/two/three.txt', action: 'create', content: 'new\n' },
        { path: 'existing/dir/new.txt', action: 'create', content: 'sibling\n' },
      ],
      policy(),
    );
    expect(plan.written.sort()).toEqual(['existing/dir/new.txt', 'fresh/one/two/three.txt', 'keep/a.txt', 'new/deeper/name.txt']);
    expect(plan.deleted.sort()).toEqual(['gone.txt', 'old/name.txt']);

    const change = applyPlan(ws, plan);
    expect(readFileSync(path.join(ws, 'fresh/one/two/three.txt'), 'utf8')).toBe('new\n');
    expect(readFileSync(path.join(ws, 'new/deeper/name.txt'), 'utf8')).toBe('renamed\n');
    expect(existsSync(path.join(ws, 'gone.txt'))).toBe(false);
    expect(existsSync(path.join(ws, 'old/name.txt'))).toBe(false);
    expect(readFileSync(path.join(ws, 'keep/a.txt'), 'utf8')).toBe('a\r\nMIXED\r\nendings\r\n');

    restoreChange(ws, change);
    expect(snapshot(ws)).toEqual(before);
  });

  it('leaves a created directory in place when something else was put into it meanwhile', () => {
    const ws = workspace();
    const change = applyPlan(ws, planEdits(ws, [{ path: 'made/a.txt', action: 'create', content: 'a\n' }], policy()));
    writeFileSync(path.join(ws, 'made/other.txt'), 'not the attempt\n');
    restoreChange(ws, change);
    expect(snapshot(ws)).toEqual({ 'made/': 'dir', 'made/other.txt': Buffer.from('not the attempt\n').toString('base64') });
  });

  it('writes nothing at all when any edit of the attempt is refused', () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    refusal(ws, [
      { path: 'new/file.txt', action: 'create', content: 'would be fine\n' },
      { path: 'a.txt', action: 'replace', content: 'fine too\n' },
      { path: '.git/config', action: 'create', content: '[core]\n' },
    ]);
    expect(existsSync(path.join(ws, 'new'))).toBe(false);
    expect(readFileSync(path.join(ws, 'a.txt'), 'utf8')).toBe('a\n');
  });

  it('plans nothing for edits that leave files unchanged', () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    expect(planEdits(ws, [{ path: 'a.txt', action: 'replace', content: 'a\n' }], policy())).toEqual({ files: [], written: [], deleted: [] });
  });
});
