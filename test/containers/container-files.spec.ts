/**
 * Container files, validated by construction (no Docker engine is needed): the compose
 * file and both Dockerfiles are parsed and checked against CONTRACT.md and rule 17 of
 * the code-shape anchors. Every check is a pure function returning a list of problems;
 * each runs on the real file (expecting none) and on a deliberately broken variant
 * (expecting the problem), so no check can pass vacuously.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { load as loadYaml } from 'js-yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (rel: string) => readFileSync(path.join(ROOT, rel), 'utf8');

// ---------------------------------------------------------------------------------------
// Dockerfile parsing
// ---------------------------------------------------------------------------------------

interface Instruction {
  cmd: string;
  args: string;
}
interface Stage {
  image: string;
  name: string | undefined;
  index: number;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (comments dropped, continuations joined). */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split(/\r?\n/)) {
    // Comment lines are ignored by Docker even in the middle of a continuation.
    if (/^\s*#/.test(raw)) continue;
    if (/\\\s*$/.test(raw)) {
      current += raw.replace(/\\\s*$/, ' ');
      continue;
    }
    current += raw;
    if (current.trim()) logical.push(current.trim());
    current = '';
  }
  if (current.trim()) logical.push(current.trim());

  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^(\S+)\s*(.*)$/s.exec(line)!;
    const ins: Instruction = { cmd: m[1].toUpperCase(), args: m[2].trim() };
    if (ins.cmd === 'FROM') {
      const tokens = ins.args.split(/\s+/).filter((t) => !t.startsWith('--'));
      const name = tokens[1]?.toUpperCase() === 'AS' ? tokens[2] : undefined;
      stages.push({ image: tokens[0], name, index: stages.length, instructions: [] });
    } else if (stages.length) {
      stages[stages.length - 1].instructions.push(ins);
    } else if (ins.cmd !== 'ARG') {
      throw new Error(`instruction before FROM: ${line}`);
    }
  }
  return stages;
}

/** `--flag=value` options and the remaining arguments (JSON or whitespace form). */
function splitFlags(args: string): { flags: Record<string, string>; rest: string[] } {
  const flags: Record<string, string> = {};
  let s = args.trim();
  for (let m = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(s); m; m = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(s)) {
    flags[m[1]] = m[2] ?? 'true';
    s = s.slice(m[0].length);
  }
  const rest = s.startsWith('[') ? (JSON.parse(s) as string[]) : s.split(/\s+/).filter(Boolean);
  return { flags, rest };
}

/** ENV in `KEY=value ...` form (quotes allowed) or the legacy `KEY value` form. */
function parseEnv(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  const tokens: string[] = args.match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g) ?? [];
  const [first, ...others] = tokens;
  if (first !== undefined && !first.includes('=')) {
    out[first] = others.join(' ');
    return out;
  }
  for (const t of tokens) {
    const i = t.indexOf('=');
    out[t.slice(0, i)] = t.slice(i + 1).replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

const stageRef = (stages: Stage[], ref: string) => stages.find((s) => s.name === ref || String(s.index) === ref);

/** The WORKDIR a stage ends with (where its RUN commands wrote their output). */
const stageWorkdir = (s: Stage) =>
  s.instructions.filter((i) => i.cmd === 'WORKDIR').reduce((dir, i) => path.posix.resolve(dir, i.args.trim()), '/');

/** The runtime stage and every stage whose filesystem reaches it (FROM chain and COPY --from). */
function stagesReachingRuntime(stages: Stage[]): Stage[] {
  const seen = new Set<Stage>();
  const visit = (s: Stage) => {
    if (seen.has(s)) return;
    seen.add(s);
    const base = stageRef(stages, s.image);
    if (base) visit(base);
    for (const ins of s.instructions) {
      const from = ins.cmd === 'COPY' ? splitFlags(ins.args).flags.from : undefined;
      const src = from !== undefined ? stageRef(stages, from) : undefined;
      if (src) visit(src);
    }
  };
  visit(stages[stages.length - 1]);
  return [...seen];
}

/** True when a path of the build context exists, globs (`tsconfig*.json`) included. */
function contextSourceExists(src: string): boolean {
  const rel = src.replace(/^\.\//, '').replace(/\/$/, '');
  if (!/[*?[]/.test(rel)) return existsSync(path.join(ROOT, rel));
  const dir = path.posix.dirname(rel);
  const re = globToRegExp(path.posix.basename(rel));
  const abs = path.join(ROOT, dir);
  return existsSync(abs) && readdirSync(abs).some((f) => re.test(f));
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*' && glob[i + 2] === '/') {
      re += '(?:.*/)?';
      i += 2;
    } else if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Patterns of a .dockerignore (comments and blank lines dropped, `!` exceptions ignored). */
function dockerignorePatterns(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('!'))
    .map((l) => l.replace(/^\/+/, '').replace(/\/+$/, ''));
}

/** True when .dockerignore removes the path (or one of its parent directories) from the context. */
function ignoredByDockerignore(rel: string, patterns: string[]): boolean {
  const parts = rel.replace(/^\.\//, '').replace(/\/$/, '').split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  return patterns.some((p) => prefixes.some((prefix) => globToRegExp(p).test(prefix)));
}

// A package install that names one of these in a RUN line (apt, apk, dnf, yum, microdnf).
const INSTALL_RE = /\b(?:apt-get|apt|apk|dnf|yum|microdnf)\b[^;&|]*\b(?:install|add)\b([^;&|]*)/g;
const installedPackages = (run: string) => [...run.matchAll(INSTALL_RE)].flatMap((m) => m[1].split(/\s+/).filter((t) => t && !t.startsWith('-')));
const FORBIDDEN_IN_RUNTIME = /^(?:git|git-core|gcc|g\+\+|make|build-essential|build-base|clang|python3?|cmake)(?:[=:].*)?$/;

interface DockerfileExpectations {
  command: 'supervisor' | 'executor';
  healthcheck: boolean;
  workspaceVolume: boolean;
}

/** Everything rule 17 and the brief ask of an app Dockerfile; returns the problems found. */
function dockerfileProblems(text: string, expect: DockerfileExpectations, ignore: string[]): string[] {
  const problems: string[] = [];
  const stages = parseDockerfile(text);
  if (stages.length < 3) problems.push(`expected build, prod-deps and runtime stages, found ${stages.length}`);
  const runtime = stages[stages.length - 1];
  if (!runtime) return ['no FROM'];
  if (!/^node:20-[a-z0-9.-]*-?slim(?:@sha256:[0-9a-f]{64})?$/.test(runtime.image)) {
    problems.push(`runtime stage must be FROM node:20-...-slim, got ${runtime.image}`);
  }
  const rt = (cmd: string) => runtime.instructions.filter((i) => i.cmd === cmd);

  // Non-root: the last USER of the runtime stage is `node`.
  const users = rt('USER').map((i) => i.args.trim());
  if (users[users.length - 1] !== 'node') problems.push(`runtime must end as USER node, has ${JSON.stringify(users)}`);

  const env = Object.assign({}, ...rt('ENV').map((i) => parseEnv(i.args))) as Record<string, string>;
  if (env.NODE_ENV !== 'production') problems.push('runtime must set ENV NODE_ENV=production');

  // No git (the product uses isomorphic-git) and no compilers in anything reaching the runtime.
  for (const s of stagesReachingRuntime(stages)) {
    for (const ins of s.instructions.filter((i) => i.cmd === 'RUN')) {
      for (const pkg of installedPackages(ins.args)) {
        const isGit = /^git(?:-core)?(?:[=:].*)?$/.test(pkg);
        if (isGit || (s === runtime && FORBIDDEN_IN_RUNTIME.test(pkg))) {
          problems.push(`stage ${s.name ?? s.index} installs ${pkg}, which would reach the runtime image`);
        }
      }
    }
  }

  // Build stage compiles with all deps; runtime node_modules come from an --omit=dev install.
  if (!stages.some((s) => s.instructions.some((i) => i.cmd === 'RUN' && /\bnpm run build\b/.test(i.args)))) {
    problems.push('no stage runs `npm run build`');
  }
  for (const s of stages) {
    const firstCi = s.instructions.findIndex((i) => i.cmd === 'RUN' && /\bnpm ci\b/.test(i.args));
    if (firstCi < 0) continue;
    const lockCopied = s.instructions
      .slice(0, firstCi)
      .some((i) => i.cmd === 'COPY' && !splitFlags(i.args).flags.from && splitFlags(i.args).rest.slice(0, -1).includes('package-lock.json'));
    if (!lockCopied) problems.push(`stage ${s.name ?? s.index} runs npm ci before copying package-lock.json`);
  }

  // Map image paths of the runtime stage to what was copied there.
  const copies: { target: string; dir: boolean; fromStage: Stage | undefined; src: string }[] = [];
  let workdir = '/';
  for (const ins of runtime.instructions) {
    if (ins.cmd === 'WORKDIR') workdir = path.posix.resolve(workdir, ins.args.trim());
    if (ins.cmd !== 'COPY' && ins.cmd !== 'ADD') continue;
    const { flags, rest } = splitFlags(ins.args);
    const dest = path.posix.resolve(workdir, rest[rest.length - 1]);
    const destIsDir = rest[rest.length - 1].endsWith('/') || rest.length > 2;
    for (const src of rest.slice(0, -1)) {
      const fromStage = flags.from !== undefined ? stageRef(stages, flags.from) : undefined;
      const isDir = fromStage ? !path.posix.extname(src) : existsSync(path.join(ROOT, src)) && statSync(path.join(ROOT, src)).isDirectory();
      copies.push({ target: isDir || !destIsDir ? dest : path.posix.join(dest, path.posix.basename(src)), dir: isDir, fromStage, src });
    }
  }
  const copyAt = (imagePath: string) =>
    copies.find((c) => c.target === imagePath || (c.dir && imagePath.startsWith(`${c.target}/`)));

  // Every source taken from the build context (in any stage) exists and is not dockerignored.
  for (const s of stages) {
    for (const ins of s.instructions.filter((i) => i.cmd === 'COPY' || i.cmd === 'ADD')) {
      const { flags, rest } = splitFlags(ins.args);
      if (flags.from !== undefined) continue;
      for (const src of rest.slice(0, -1)) {
        if (!contextSourceExists(src)) problems.push(`COPY ${src}: not in the repository`);
        else if (ignoredByDockerignore(src, ignore)) problems.push(`COPY ${src}: excluded by .dockerignore`);
      }
    }
  }

  // ENTRYPOINT: node <the CLI launcher> <command>, exec form, reachable from the final WORKDIR.
  const entry = rt('ENTRYPOINT').at(-1);
  let script: string | undefined;
  if (!entry || !entry.args.startsWith('[')) problems.push('runtime needs an exec-form ENTRYPOINT');
  else {
    const argv = JSON.parse(entry.args) as string[];
    if (argv.length !== 3 || argv[0] !== 'node' || argv[2] !== expect.command) {
      problems.push(`ENTRYPOINT must be ["node", ".../bin/autopack.js", "${expect.command}"], got ${entry.args}`);
    }
    script = path.posix.resolve(workdir, argv[1] ?? '');
    const c = copyAt(script);
    const repoPath = c && !c.fromStage ? path.posix.join(c.src.replace(/\/$/, ''), c.dir ? path.posix.relative(c.target, script) : '') : undefined;
    if (repoPath !== 'bin/autopack.js') problems.push(`ENTRYPOINT script ${script} is not bin/autopack.js copied from the repository`);
  }

  // bin/autopack.js loads ../dist/apps/cli/src/main.js; the version is read from ../package.json.
  if (script) {
    const appRoot = path.posix.resolve(path.posix.dirname(script), '..');
    const dist = copyAt(`${appRoot}/dist/apps/cli/src/main.js`);
    if (
      !dist?.fromStage ||
      !dist.fromStage.instructions.some((i) => i.cmd === 'RUN' && /\bnpm run build\b/.test(i.args)) ||
      path.posix.resolve(stageWorkdir(dist.fromStage), dist.src) !== path.posix.join(stageWorkdir(dist.fromStage), 'dist')
    ) {
      problems.push(`${appRoot}/dist must be the dist/ of the stage that runs npm run build`);
    }
    const modules = copyAt(`${appRoot}/node_modules/pg/package.json`);
    const ci = modules?.fromStage?.instructions.find((i) => i.cmd === 'RUN' && /\bnpm ci\b/.test(i.args));
    if (!ci || !/--omit=dev\b/.test(ci.args)) problems.push(`${appRoot}/node_modules must come from an \`npm ci --omit=dev\` stage`);
    else if (path.posix.resolve(stageWorkdir(modules!.fromStage!), modules!.src) !== path.posix.join(stageWorkdir(modules!.fromStage!), 'node_modules')) {
      problems.push(`${appRoot}/node_modules must be the node_modules/ of the --omit=dev stage`);
    }
    if (!copyAt(`${appRoot}/package.json`)) problems.push(`${appRoot}/package.json is not copied`);
  }

  const hc = rt('HEALTHCHECK').at(-1);
  if (expect.healthcheck) {
    if (!hc || !/\bnode\b/.test(hc.args) || !/fetch\(/.test(hc.args) || !/\/health\b/.test(hc.args)) {
      problems.push('runtime needs a HEALTHCHECK that fetches /health with node');
    }
    if (hc && /\b(curl|wget)\b/.test(hc.args)) problems.push('HEALTHCHECK must not rely on curl/wget (absent from slim images)');
  }
  if (expect.workspaceVolume) {
    if (workdir !== '/workspace') problems.push(`executor WORKDIR must end as /workspace, is ${workdir}`);
    const volumes = rt('VOLUME').flatMap((i) => splitFlags(i.args).rest);
    if (!volumes.includes('/workspace')) problems.push('executor must declare VOLUME /workspace');
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// docker-compose.yml checks
// ---------------------------------------------------------------------------------------

type Service = Record<string, unknown> & {
  environment?: Record<string, unknown> | string[];
  profiles?: string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string };
};
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown> };

const SECRETS = ['AUTOPACK_API_KEY', 'OPENAI_API_KEY', 'ANTHROPIC_API_KEY'];

/**
 * Database passwords come from the environment too, but may fall back to a default for a
 * laptop or a throwaway test DB; that default must say so (contain "local" or "test").
 */
const isMarkedDbPassword = (v: unknown) => {
  const m = /^\$\{[A-Z_]*PASSWORD(?::?-([^}]*))?\}$/.exec(String(v));
  return !!m && (m[1] === undefined || m[1] === '' || /local|test/i.test(m[1]));
};

/** A service's environment as a map (list form `KEY=value` or bare `KEY` included). */
function envOf(s: Service): Record<string, unknown> {
  if (!s.environment) return {};
  if (!Array.isArray(s.environment)) return s.environment;
  return Object.fromEntries(s.environment.map((e) => (e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, null])));
}

/** Only `${VAR}`, `${VAR:-}`, `${VAR-}`, `${VAR:?msg}`, `${VAR?msg}` (or pass-through) may hold a secret. */
const isSecretReference = (v: unknown) => v === null || v === undefined || (typeof v === 'string' && /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-|:?\?[^}]*)?\}$/.test(v));

function allStrings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(allStrings);
  if (v && typeof v === 'object') return Object.values(v).flatMap(allStrings);
  return [];
}

const dependsCondition = (s: Service, on: string) => (Array.isArray(s.depends_on) ? undefined : s.depends_on?.[on]?.condition);
const healthTest = (s: Service) => [s.healthcheck?.test ?? []].flat().join(' ');

function composeProblems(c: Compose): string[] {
  const problems: string[] = [];
  const { postgres, supervisor, executor } = c.services ?? {};
  if (!postgres || !supervisor || !executor) return [`services postgres, supervisor and executor are required, found ${Object.keys(c.services ?? {})}`];

  if (!/^postgres:\d+/.test(String(postgres.image))) problems.push('postgres must use a postgres image');
  if (!/pg_isready/.test(healthTest(postgres))) problems.push('postgres needs a pg_isready healthcheck');
  const pgVolume = allStrings(postgres.volumes).find((v) => v.endsWith(':/var/lib/postgresql/data'));
  const volName = pgVolume?.split(':')[0];
  if (!volName || !c.volumes || !(volName in c.volumes)) problems.push('postgres data must be a declared named volume');
  for (const [name, s] of Object.entries(c.services)) {
    const pw = envOf(s).POSTGRES_PASSWORD;
    if (pw !== undefined && !isMarkedDbPassword(pw)) problems.push(`${name}: POSTGRES_PASSWORD must be \${...PASSWORD} with at most a local/test default`);
  }

  const sb = supervisor.build as { context?: string; dockerfile?: string } | undefined;
  if (sb?.dockerfile !== 'apps/supervisor/Dockerfile' || sb.context !== '.') problems.push('supervisor must build apps/supervisor/Dockerfile from the repository root');
  if (dependsCondition(supervisor, 'postgres') !== 'service_healthy') problems.push('supervisor must depend on postgres: service_healthy');
  const senv = envOf(supervisor);
  if (!/^postgres(?:ql)?:\/\/[^@]+@postgres:5432\//.test(String(senv.DATABASE_URL))) problems.push('supervisor DATABASE_URL must point at the postgres service');
  if (senv.HOST !== '0.0.0.0' || String(senv.PORT) !== '8000') problems.push('supervisor must listen on 0.0.0.0:8000');
  if (!/^\$\{AUTOPACK_API_KEY:\?[^}]+\}$/.test(String(senv.AUTOPACK_API_KEY))) problems.push('supervisor must require AUTOPACK_API_KEY with ${AUTOPACK_API_KEY:?...}');
  if (!allStrings(supervisor.ports).some((p) => /(^|:)8000:8000$/.test(p))) problems.push('supervisor must publish 8000:8000');
  if (!/\/health\b/.test(healthTest(supervisor))) problems.push('supervisor needs a /health healthcheck');

  if (JSON.stringify(executor.profiles) !== JSON.stringify(['executor'])) problems.push('executor must sit under profiles: [executor]');
  const eb = executor.build as { context?: string; dockerfile?: string } | undefined;
  if (eb?.dockerfile !== 'apps/executor/Dockerfile' || eb.context !== '.') problems.push('executor must build apps/executor/Dockerfile from the repository root');
  if (dependsCondition(executor, 'supervisor') !== 'service_healthy') problems.push('executor must depend on supervisor: service_healthy');
  const eenv = envOf(executor);
  if (eenv.AUTOPACK_API_URL !== 'http://supervisor:8000') problems.push('executor AUTOPACK_API_URL must be http://supervisor:8000');
  for (const k of ['AUTOPACK_API_KEY', 'OPENAI_API_KEY', 'ANTHROPIC_API_KEY']) {
    if (!(k in eenv) || !(eenv[k] === null || new RegExp(`^\\$\\{${k}[:?}-]`).test(String(eenv[k])))) problems.push(`executor must pass ${k} through from the host`);
  }
  const mountsWorkspace = allStrings(executor.volumes).some((v) => v === '/workspace' || v.endsWith(':/workspace'));
  if (!mountsWorkspace) problems.push('executor must mount a workspace at /workspace');
  const cmd = allStrings(executor.command);
  const runIdAt = cmd.indexOf('--run-id');
  if (runIdAt < 0 || !/^\$\{AUTOPACK_RUN_ID[:?}-]/.test(cmd[runIdAt + 1] ?? '')) problems.push('executor command must pass --run-id ${AUTOPACK_RUN_ID...}');
  if (!cmd.includes('--workspace') || cmd[cmd.indexOf('--workspace') + 1] !== '/workspace') problems.push('executor command must pass --workspace /workspace');
  if (/^(0|root)(:|$)/.test(String(executor.user ?? ''))) problems.push('executor must not run as root');

  // No literal secret in any service: environment values, command flags or anything else.
  for (const [name, s] of Object.entries(c.services)) {
    const env = envOf(s);
    for (const k of SECRETS) {
      if (k in env && !isSecretReference(env[k])) problems.push(`${name}: ${k} holds a literal value; use \${${k}...}`);
    }
    const args = allStrings(s.command);
    for (const [i, a] of args.entries()) {
      if (/^--(api-key|openai-key|anthropic-key)(=|$)/.test(a)) {
        const value = a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[i + 1];
        if (!isSecretReference(value)) problems.push(`${name}: ${a} is given a literal secret`);
      }
    }
  }

  // Compose interpolates the whole file before applying profiles: a `:?` in a profile-gated
  // service would break plain `docker compose up` unless the default services need it too.
  const requiredIn = (s: Service) => allStrings(s).flatMap((v) => [...v.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*):?\?/g)].map((m) => m[1]));
  const always = new Set(Object.values(c.services).filter((s) => !s.profiles?.length).flatMap(requiredIn));
  for (const [name, s] of Object.entries(c.services)) {
    if (!s.profiles?.length) continue;
    for (const v of requiredIn(s)) if (!always.has(v)) problems.push(`${name} (profiles ${s.profiles}) requires ${v} with :?, which breaks docker compose up without that profile`);
  }

  const t = c.services['postgres-test'];
  if (t) {
    if (!t.profiles?.includes('test')) problems.push('postgres-test must sit under profiles: [test]');
    if (!allStrings(t.tmpfs).some((p) => p.startsWith('/var/lib/postgresql/data'))) problems.push('postgres-test data must be on tmpfs');
    if (!allStrings(t.command).join(' ').includes('fsync=off')) problems.push('postgres-test must run with fsync=off');
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

const IGNORE = dockerignorePatterns(read('.dockerignore'));
const SUPERVISOR: DockerfileExpectations = { command: 'supervisor', healthcheck: true, workspaceVolume: false };
const EXECUTOR: DockerfileExpectations = { command: 'executor', healthcheck: false, workspaceVolume: true };

describe('docker-compose.yml', () => {
  const text = read('docker-compose.yml');
  const compose = () => loadYaml(text) as Compose;

  it('parses as YAML with services', () => {
    expect(compose().services).toEqual(expect.any(Object));
  });

  it('has the services, profiles, healthchecks, dependencies and secret handling required', () => {
    expect(composeProblems(compose())).toEqual([]);
  });

  it('flags a literal secret, a missing profile, an unhealthy dependency and a required variable in a profile', () => {
    const c = compose();
    (c.services.executor.environment as Record<string, unknown>).OPENAI_API_KEY = 'sk-live-123';
    (c.services.supervisor.environment as Record<string, unknown>).AUTOPACK_API_KEY = '${AUTOPACK_API_KEY:-changeme}';
    delete c.services.executor.profiles;
    c.services.supervisor.depends_on = { postgres: { condition: 'service_started' } };
    c.services['postgres-test'].environment = { POSTGRES_PASSWORD: '${PG_TEST_PW:?set it}' };
    (c.services.postgres.environment as Record<string, unknown>).POSTGRES_PASSWORD = '${POSTGRES_PASSWORD:-hunter2}';
    const problems = composeProblems(c).join('\n');
    expect(problems).toMatch(/executor: OPENAI_API_KEY holds a literal value/);
    expect(problems).toMatch(/supervisor: AUTOPACK_API_KEY holds a literal value/);
    expect(problems).toMatch(/profiles: \[executor\]/);
    expect(problems).toMatch(/postgres: service_healthy/);
    expect(problems).toMatch(/postgres-test .* requires PG_TEST_PW/);
    expect(problems).toMatch(/postgres: POSTGRES_PASSWORD must be/);
  });

  it('flags a literal secret passed as a command-line flag', () => {
    const c = compose();
    c.services.executor.command = ['--run-id', '${AUTOPACK_RUN_ID:-}', '--workspace', '/workspace', '--anthropic-key', 'sk-ant-1'];
    expect(composeProblems(c)).toEqual(['executor: --anthropic-key is given a literal secret']);
  });
});

describe.each([
  ['apps/supervisor/Dockerfile', SUPERVISOR],
  ['apps/executor/Dockerfile', EXECUTOR],
])('%s', (file, expectations) => {
  const text = read(file);

  it('has build, prod-deps and a non-root node:20 slim runtime with the CLI as ENTRYPOINT', () => {
    const stages = parseDockerfile(text);
    expect(stages.at(-1)?.image).toMatch(/^node:20-.*slim/);
    expect(dockerfileProblems(text, expectations, IGNORE)).toEqual([]);
  });

  it('copies from the build context only paths that exist and are not dockerignored', () => {
    const sources = parseDockerfile(text)
      .flatMap((s) => s.instructions)
      .filter((i) => i.cmd === 'COPY' && !splitFlags(i.args).flags.from)
      .flatMap((i) => splitFlags(i.args).rest.slice(0, -1));
    expect(sources).toEqual(expect.arrayContaining(['bin', 'package.json', 'package-lock.json', 'apps', 'libs']));
    expect(sources.filter((s) => !contextSourceExists(s) || ignoredByDockerignore(s, IGNORE))).toEqual([]);
  });

  it('flags git in a stage reaching the runtime, a root user and a wrong ENTRYPOINT', () => {
    const broken = text
      .replace(/^USER node$/m, 'USER root')
      .replace(/^FROM (node:20-bookworm-slim) AS runtime$/m, 'FROM $1 AS runtime\nRUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates')
      .replace(/"(supervisor|executor)"\]$/m, '"demo"]');
    expect(broken).not.toBe(text);
    const problems = dockerfileProblems(broken, expectations, IGNORE).join('\n');
    expect(problems).toMatch(/installs git/);
    expect(problems).toMatch(/USER node/);
    expect(problems).toMatch(/ENTRYPOINT must be/);
  });

  it('flags dev dependencies in the runtime, a missing source and a dist that is not the build output', () => {
    const broken = text
      .replace(/--omit=dev /, '')
      .replace(/^COPY bin \.\/bin$/m, 'COPY bin ./bin\nCOPY no-such-dir ./no-such-dir')
      .replace(/^COPY --from=build \/app\/dist \.\/dist$/m, 'COPY --from=build /app/apps ./dist');
    const problems = dockerfileProblems(broken, expectations, IGNORE).join('\n');
    expect(problems).toMatch(/npm ci --omit=dev/);
    expect(problems).toMatch(/COPY no-such-dir: not in the repository/);
    expect(problems).toMatch(/dist must be the dist\/ of the stage that runs npm run build/);
  });

  it('flags an ENTRYPOINT whose script is not where bin/ was copied', () => {
    // The classic mistake: a relative script path after WORKDIR moved away from the app.
    const broken = text.replace(/^ENTRYPOINT \["node", "[^"]*"/m, 'WORKDIR /elsewhere\nENTRYPOINT ["node", "bin/autopack.js"');
    expect(broken).not.toBe(text);
    expect(dockerfileProblems(broken, expectations, IGNORE).join('\n')).toMatch(/ENTRYPOINT script \S+ is not bin\/autopack\.js/);
  });
});

describe('.dockerignore', () => {
  it('keeps local state, build output and secrets out of the build context', () => {
    for (const p of ['node_modules', 'dist', '.autopack', '.git', 'coverage', '*.log', '.env*']) expect(IGNORE).toContain(p);
    for (const f of ['.env', '.env.local', 'debug.log', '.autopack/test-pg']) expect(ignoredByDockerignore(f, IGNORE)).toBe(true);
    for (const f of ['bin/autopack.js', 'package-lock.json', 'apps/supervisor/src/main.ts', 'tsconfig.build.json']) expect(ignoredByDockerignore(f, IGNORE)).toBe(false);
  });

  it('is what the COPY check relies on: an ignored source is flagged', () => {
    const problems = dockerfileProblems(read('apps/supervisor/Dockerfile'), SUPERVISOR, [...IGNORE, 'bin']);
    expect(problems).toContain('COPY bin: excluded by .dockerignore');
  });
});
