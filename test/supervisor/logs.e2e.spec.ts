import type { INestApplication } from '@nestjs/common';
import type { LogFormat } from '@app/contracts';
import { createSupervisorApp } from '../../apps/supervisor/src/bootstrap.js';
import { loadSupervisorConfig } from '../../apps/supervisor/src/config.js';
import { AppLogger, createRootLogger } from '../../apps/supervisor/src/http/logger.js';
import { createExecutorLogger } from '../../apps/executor/src/logger.js';
import { type TestDatabase, createTestDatabase } from '../support/database.js';

/**
 * The supervisor's logs in both forms (pino-pretty and JSON), from a real supervisor on a real
 * database: the same redaction, ISO timestamps, the request id on the request's line, and no
 * Nest route-mapping lines at the default level.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db?.drop());

const SECRETS = { authorization: 'Bearer sk-live-AAAA', apiKey: 'sk-live-BBBB', lease_token: 'sk-live-CCCC', databaseUrl: 'postgres://u:sk-live-DDDD@h/db', cookie: 'autopack_key=sk-live-EEEE' };
const ISO = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/;

interface Captured {
  text: string;
  lines: string[];
}

/** Starts a supervisor logging in `format` at `level` into memory, runs `fn`, and returns what it logged. */
async function logsOf(format: LogFormat, level: string, fn: (app: INestApplication, url: string, log: AppLogger) => Promise<void>): Promise<Captured> {
  const lines: string[] = [];
  const log = new AppLogger(createRootLogger(level, { write: (s: string) => void lines.push(...s.split('\n').filter(Boolean)) }, format));
  const config = loadSupervisorConfig({ AUTOPACK_LOG_LEVEL: level }, { port: 0 });
  const app = await createSupervisorApp(config, db.url, log);
  await app.listen(0, '127.0.0.1');
  try {
    const { port } = app.getHttpServer().address() as { port: number };
    await fn(app, `http://127.0.0.1:${port}`, log);
  } finally {
    await app.close();
  }
  return { text: lines.join('\n'), lines };
}

/** Logs a secret-laden object and makes two requests (one with a well-formed X-Request-Id, one with a malformed one). */
async function exercise(_app: INestApplication, url: string, log: AppLogger): Promise<void> {
  log.info({ config: { ...SECRETS }, headers: { 'x-api-key': 'sk-live-FFFF', authorization: SECRETS.authorization }, ...SECRETS }, 'secrets test');
  const ok = await fetch(`${url}/runs`, { headers: { 'X-Request-Id': 'corr-42.a', 'X-API-Key': 'sk-live-GGGG', authorization: 'Bearer sk-live-HHHH' } });
  expect(ok.status).toBe(200);
  expect(ok.headers.get('x-request-id')).toBe('corr-42.a');
  const bad = await fetch(`${url}/runs/nope`, { headers: { 'X-Request-Id': 'not ok/../\u00e9' } });
  expect(bad.status).toBe(404);
  expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
}

describe('supervisor logs', () => {
  let json: Captured;
  let pretty: Captured;
  beforeAll(async () => {
    json = await logsOf('json', 'info', exercise);
    pretty = await logsOf('pretty', 'info', exercise);
  });

  it('JSON: one object a line, ISO timestamps, secrets redacted, the request id on the request line', () => {
    const objs = json.lines.map((l) => JSON.parse(l) as Record<string, any>);
    for (const o of objs) expect(o.time).toMatch(new RegExp(`^${ISO.source}$`));
    expect(json.text).not.toMatch(/sk-live-/);
    const s = objs.find((o) => o.msg === 'secrets test')!;
    expect(s).toMatchObject({ ...Object.fromEntries(Object.keys(SECRETS).map((k) => [k, '[redacted]'])), headers: { 'x-api-key': '[redacted]', authorization: '[redacted]' } });
    expect(s.config).toEqual(Object.fromEntries(Object.keys(SECRETS).map((k) => [k, '[redacted]'])));
    const req = objs.find((o) => o.msg === 'request' && o.req_id === 'corr-42.a');
    expect(req).toMatchObject({ level: 30, method: 'GET', route: '/runs', path: '/runs', status: 200 });
    expect(typeof req!.duration_ms).toBe('number');
    expect(req).not.toHaveProperty('req');
    expect(req).not.toHaveProperty('headers');
    const notFound = objs.find((o) => o.path === '/runs/nope')!;
    expect(notFound).toMatchObject({ level: 40, status: 404, route: '/runs/:run_id' });
    expect(notFound.req_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('pretty: the same redaction, ISO timestamps, the request id on the request line', () => {
    expect(pretty.text).not.toMatch(/sk-live-/);
    expect(pretty.text).not.toMatch(/^\s*\{"level"/m);
    const entries = pretty.lines.filter((l) => /^\[/.test(l));
    expect(entries.length).toBeGreaterThan(2);
    for (const l of entries) expect(l).toMatch(new RegExp(`^\\[${ISO.source}\\] (INFO|WARN|ERROR|DEBUG)`));
    // Exactly as many values hidden as in the JSON form.
    const hidden = (t: string) => t.match(/\[redacted\]/g)?.length ?? 0;
    expect(hidden(pretty.text)).toBe(hidden(json.text));
    expect(hidden(pretty.text)).toBeGreaterThanOrEqual(12);
    const i = pretty.lines.findIndex((l) => /INFO.*: request$/.test(l) && pretty.lines.slice(pretty.lines.indexOf(l) + 1).find((x) => /^\s+req_id:/.test(x))?.includes('corr-42.a'));
    expect(i).toBeGreaterThanOrEqual(0);
    const block = pretty.lines.slice(i + 1, i + 8).join('\n');
    expect(block).toMatch(/method: "GET"/);
    expect(block).toMatch(/route: "\/runs"/);
    expect(block).toMatch(/status: 200/);
  });

  it('shows no route-mapping lines at the default level (they are debug)', async () => {
    for (const c of [json, pretty]) {
      expect(c.text).not.toMatch(/Mapped \{/);
      expect(c.text).not.toMatch(/RoutesResolver|RouterExplorer/);
    }
    const debug = await logsOf('json', 'debug', exercise);
    const mapped = debug.lines.map((l) => JSON.parse(l) as Record<string, any>).filter((o) => /Mapped \{/.test(o.msg));
    expect(mapped.length).toBeGreaterThan(10);
    for (const o of mapped) expect(o.level).toBe(20);
  });

  it('the executor redacts with the same list', () => {
    const lines: string[] = [];
    const exec = createExecutorLogger('info', { executor_id: 'e1' }, { format: 'json', destination: { write: (s: string) => void lines.push(s) } });
    exec.info({ config: { ...SECRETS }, openaiKey: 'sk-live-IIII', anthropicKey: 'sk-live-JJJJ', ...SECRETS }, 'secrets test');
    const o = JSON.parse(lines[0]) as Record<string, any>;
    expect(lines.join('')).not.toMatch(/sk-live-/);
    expect(o.time).toMatch(new RegExp(`^${ISO.source}$`));
    expect(o.config).toEqual(JSON.parse(json.lines.find((l) => l.includes('"secrets test"'))!).config);
  });
});
