import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { Module, createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';

/**
 * Where compiled code is kept between processes: `$AUTOPACK_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/autopack/v8`, else `~/.cache/autopack/v8`; null (no cache) without a home:
 * a directory other users can write to must not hold code this process runs.
 */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.AUTOPACK_CACHE_DIR) return path.join(env.AUTOPACK_CACHE_DIR, 'v8');
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'autopack', 'v8');
  const home = env.HOME || safeHomedir();
  return home ? path.join(home, '.cache', 'autopack', 'v8') : null;
}

function safeHomedir(): string | undefined {
  try {
    return os.homedir() || undefined;
  } catch {
    return undefined;
  }
}

/** The modules loaded here, by file. */
const loaded = new Map<string, Module>();

/**
 * `require(id)` of a large CommonJS module (resolved from `from`), compiled with V8's code cache
 * kept in `cacheDir` (null: none): the first process compiles it and leaves the cache; the next ones skip
 * parsing it. For the TypeScript parser (one 9 MB file) that is about 0.2 s of CPU and 7 MiB of
 * peak memory less per executor process. Each module is loaded once per process (a plain
 * `require(id)` elsewhere would load a second instance).
 *
 * The cache is only an accelerator: V8 checks it against the source and its own version and
 * flags, and a missing, stale, foreign or unwritable cache falls back to a normal compile.
 */
export function requireWithCodeCache(id: string, from: string, cacheDir: string | null = codeCacheDir()): unknown {
  const req = createRequire(from);
  const filename = req.resolve(id);
  const cached = loaded.get(filename);
  if (cached) return cached.exports;

  const source = readFileSync(filename, 'utf8');
  const cacheFile = cacheDir !== null ? codeCacheFile(filename, cacheDir) : undefined;
  let cachedData: Buffer | undefined;
  try {
    cachedData = cacheFile !== undefined ? readFileSync(cacheFile) : undefined;
  } catch {
    cachedData = undefined;
  }

  const wrapper = `(function (exports, require, module, __filename, __dirname) { ${source.startsWith('#!') ? `//${source}` : source}\n})`;
  const script = new vm.Script(wrapper, { filename, ...(cachedData ? { cachedData } : {}) });
  const mod = new Module(filename);
  mod.filename = filename;
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(path.dirname(filename));
  const fn = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void;
  fn.call(mod.exports, mod.exports, createRequire(filename), mod, filename, path.dirname(filename));
  mod.loaded = true;
  loaded.set(filename, mod);

  if (cacheDir !== null && cacheFile !== undefined && (!cachedData || script.cachedDataRejected)) {
    // Written once the caller has used the module a little (its first call is usually right after
    // this returns), so the functions compiled by then are in the cache too.
    setImmediate(() => writeCache(script, cacheDir, cacheFile)).unref();
  }
  return mod.exports;
}

/** The cache file of a module's file: its name, size and time, and this Node's version and architecture. */
export function codeCacheFile(filename: string, cacheDir: string): string {
  const st = statSync(filename);
  const key = createHash('sha256').update(`${filename}\0${st.size}\0${st.mtimeMs}\0${process.version}\0${process.arch}`).digest('hex').slice(0, 32);
  return path.join(cacheDir, `${path.basename(filename)}-${key}.bin`);
}

/** Forgets a module loaded here, so the next load compiles it again as a new process would (for tests). */
export function forgetCodeCachedModule(filename: string): void {
  loaded.delete(filename);
}

function writeCache(script: vm.Script, cacheDir: string, cacheFile: string): void {
  try {
    mkdirSync(cacheDir, { recursive: true });
    // Another process may write the same file at the same time: each writes its own, then renames.
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(tmp, script.createCachedData());
    renameSync(tmp, cacheFile);
  } catch {
    // No cache this time: the next process compiles again.
  }
}
