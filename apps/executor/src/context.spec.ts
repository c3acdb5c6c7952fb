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
  it('marks the files the run has changed as not stable, the others as stable', () => {
    write('src/a.js', 'a');
    write('src/b.js', 'b');
    const ctx = buildContext({ root: ws, scopePaths: ['src/a.js'], readOnlyPaths: [], tokenBudget: 10_000, largeFileLines: 400, changedInRun: new Set(['src/b.js']) });
    expect(ctx.files.map((f) => [f.path, f.editable, f.stable])).toEqual([
      ['src/a.js', true, true],
      ['src/b.js', false, false],
    ]);
    const unknown = buildContext({ root: ws, scopePaths: ['src/a.js'], readOnlyPaths: [], tokenBudget: 10_000, largeFileLines: 400 });
    expect(unknown.files.every((f) => f.stable)).toBe(true);
  });
});
