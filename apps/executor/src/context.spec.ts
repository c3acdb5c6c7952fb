import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildContext, repositoryMap } from './context.js';

let ws: string;
beforeEach(() => {
  ws = mkdtempSync(path.join(os.tmpdir(), 'autopack-map-'));
  mkdirSync(path.join(ws, '.git'));
});
afterEach(() => rmSync(ws, { recursive: true, force: true }));

function write(rel: string, content: string): void {
  mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
  writeFileSync(path.join(ws, rel), content);
}

describe(repositoryMap.name, () => {
  it('maps an empty repository to no files', () => {
    expect(repositoryMap(ws)).toEqual({ files: [], truncated: false });
  });

  it('lists files in path order with their sizes, leaving out .git, deny-listed directories and symlinks', () => {
    write('.git/HEAD', 'ref: refs/heads/main\n');
    write('src/server.js', 'x'.repeat(42));
    write('package.json', '{}');
    write('node_modules/dep/index.js', 'module.exports = 1;');
    write('dist/server.js', 'built');
    symlinkSync(path.join(ws, 'package.json'), path.join(ws, 'link.json'));
    expect(repositoryMap(ws)).toEqual({
      files: [
        { path: 'package.json', bytes: 2 },
        { path: 'src/server.js', bytes: 42 },
      ],
      truncated: false,
    });
  });

  it('stops at maxFiles and says there are more', () => {
    for (const name of ['a', 'b', 'c']) write(`${name}.txt`, name);
    expect(repositoryMap(ws, { maxFiles: 2 })).toEqual({ files: [{ path: 'a.txt', bytes: 1 }, { path: 'b.txt', bytes: 1 }], truncated: true });
    expect(repositoryMap(ws, { maxFiles: 3 }).truncated).toBe(false);
  });
});

describe(buildContext.name, () => {
  const opts = { root: '', readOnlyPaths: [], tokenBudget: 100_000, largeFileLines: 400 };

  it('marks as stable the neighbourhood files the run has not changed; changed and phase-only files are not', () => {
    write('src/a.js', 'a');
    write('src/b.js', 'b');
    write('lib/far.js', 'far');
    const ctx = buildContext({ ...opts, root: ws, scopePaths: ['src/a.js'], readOnlyPaths: ['lib/far.js'], changedInRun: new Map([['src/b.js', 'modified']]) });
    expect(ctx.files.map((f) => [f.path, f.editable, f.stable])).toEqual([
      ['src/a.js', true, true],
      ['lib/far.js', false, false],
      ['src/b.js', false, false],
    ]);
    const unknown = buildContext({ ...opts, root: ws, scopePaths: ['src/a.js'] });
    expect(unknown.files.filter((f) => f.stable).map((f) => f.path)).toEqual(['src/a.js', 'src/b.js']);
  });

  it("shows a directory's first 50 files as the run found them, plus the files the run added there", () => {
    for (let i = 10; i < 70; i++) write(`src/m${i}.js`, String(i));
    const before = buildContext({ ...opts, root: ws, scopePaths: ['src/m10.js'], changedInRun: new Map() });
    write('src/a-new.js', 'added by an earlier phase');
    const after = buildContext({ ...opts, root: ws, scopePaths: ['src/m10.js'], changedInRun: new Map([['src/a-new.js', 'added']]) });
    const stable = (c: typeof before) => c.files.filter((f) => f.stable).map((f) => f.path);
    expect(stable(before)).toHaveLength(50);
    expect(stable(after)).toEqual(stable(before));
    expect(after.files.map((f) => f.path)).toContain('src/m59.js');
    expect(after.files.find((f) => f.path === 'src/a-new.js')).toMatchObject({ stable: false });
  });
});
