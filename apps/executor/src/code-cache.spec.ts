import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { codeCacheDir, codeCacheFile, forgetCodeCachedModule, requireWithCodeCache } from './code-cache.js';

describe('requireWithCodeCache', () => {
  let dir: string;
  let cacheDir: string;
  let from: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'autopack-code-cache-'));
    cacheDir = path.join(dir, 'cache');
    writeFileSync(path.join(dir, 'big.cjs'), "const helper = require('./helper.cjs');\nexports.twice = (x) => helper.add(x, x);\nexports.file = __filename;\n");
    writeFileSync(path.join(dir, 'helper.cjs'), 'exports.add = (a, b) => a + b;\n');
    from = path.join(dir, 'index.js');
  });
  afterEach(() => {
    forgetCodeCachedModule(path.join(dir, 'big.cjs'));
    delete createRequire(from).cache[path.join(dir, 'helper.cjs')];
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads a CommonJS module with its own require and __filename, once, and leaves a cache for the next process', async () => {
    const mod = requireWithCodeCache('./big.cjs', from, cacheDir) as { twice(x: number): number; file: string };
    expect(mod.twice(21)).toBe(42);
    expect(mod.file).toBe(path.join(dir, 'big.cjs'));
    // A second load returns the same instance.
    expect(requireWithCodeCache('./big.cjs', from, cacheDir)).toBe(mod);
    await tick();
    expect(readdirSync(cacheDir)).toEqual([expect.stringMatching(/^big\.cjs-[0-9a-f]{32}\.bin$/)]);
  });

  it('compiles from the cache when there is one, and ignores a damaged or unwritable one', async () => {
    requireWithCodeCache('./big.cjs', from, cacheDir);
    await tick();
    const big = path.join(dir, 'big.cjs');
    forgetCodeCachedModule(big);
    expect((requireWithCodeCache('./big.cjs', from, cacheDir) as { twice(x: number): number }).twice(2)).toBe(4);

    // A damaged cache (of a module this process never compiled: V8 would reuse its own copy) is
    // rejected, and replaced by a good one.
    const other = path.join(dir, 'other.cjs');
    writeFileSync(other, 'exports.thrice = (x) => 3 * x;\n');
    writeFileSync(codeCacheFile(other, cacheDir), 'not V8 code');
    expect((requireWithCodeCache('./other.cjs', from, cacheDir) as { thrice(x: number): number }).thrice(3)).toBe(9);
    await tick();
    expect(readFileSync(codeCacheFile(other, cacheDir), 'utf8')).not.toBe('not V8 code');
    forgetCodeCachedModule(other);

    forgetCodeCachedModule(big);
    writeFileSync(path.join(dir, 'not-a-dir'), '');
    expect((requireWithCodeCache('./big.cjs', from, path.join(dir, 'not-a-dir', 'cache')) as { twice(x: number): number }).twice(4)).toBe(8);
    await tick();
  });

  it('loads without any cache when there is no cache directory', async () => {
    expect((requireWithCodeCache('./big.cjs', from, null) as { twice(x: number): number }).twice(5)).toBe(10);
    await tick();
    expect(readdirSync(dir).sort()).toEqual(['big.cjs', 'helper.cjs']);
  });

  it('keeps the cache under AUTOPACK_CACHE_DIR, XDG_CACHE_HOME or ~/.cache', () => {
    expect(codeCacheDir({ AUTOPACK_CACHE_DIR: '/c' })).toBe(path.join('/c', 'v8'));
    expect(codeCacheDir({ XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe(path.join('/x', 'autopack', 'v8'));
    expect(codeCacheDir({ HOME: '/h' })).toBe(path.join('/h', '.cache', 'autopack', 'v8'));
  });
});
