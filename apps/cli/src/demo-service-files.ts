/**
 * The tiny HTTP service the demo's scripted build writes, file by file (repo-relative path
 * -> content), so the scripted planner and builder replies and the deployer's tests use the
 * same bytes. No dependencies: `node server.js` serves it, `node --test` tests it.
 *
 * `server.js` listens on `PORT` (default 3000) and `HOST` (default 127.0.0.1), as the demo
 * deployer starts it. `GET /health` answers 200 `{status: "ok"}`; `GET /` answers 200
 * `{message, service, commit}` (`commit` from `AUTOPACK_COMMIT_SHA`, which the deployer
 * sets); anything else is 404.
 */

/** The command that runs the service's tests (the plan's CI command). */
export const DEMO_SERVICE_TEST_COMMAND = 'node --test';

/** The service's name, in its package.json and its `GET /` answer. */
export const DEMO_SERVICE_NAME = 'hello-service';

/** The greeting of the service as the demo builds it. */
export const DEMO_SERVICE_GREETING = 'Hello from Autopack';

/** The service's files with `greeting` as its `GET /` message (tests deploy two versions). */
export function demoServiceFiles(greeting: string = DEMO_SERVICE_GREETING): Record<string, string> {
  return {
    'package.json': `${JSON.stringify(
      { name: DEMO_SERVICE_NAME, version: '1.0.0', private: true, type: 'module', main: 'server.js', scripts: { start: 'node server.js', test: DEMO_SERVICE_TEST_COMMAND } },
      null,
      2,
    )}\n`,
    'app.js': `import { createServer } from 'node:http';

export const GREETING = ${JSON.stringify(greeting)};

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The service's HTTP server, not listening yet. */
export function createApp() {
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/health') return send(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/') {
      return send(res, 200, { message: GREETING, service: ${JSON.stringify(DEMO_SERVICE_NAME)}, commit: process.env.AUTOPACK_COMMIT_SHA ?? null });
    }
    return send(res, 404, { error: 'not found' });
  });
}
`,
    'server.js': `import { createApp } from './app.js';

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const server = createApp();
server.listen(port, host, () => console.log(\`listening on http://\${host}:\${port}\`));

// Stop cleanly when the deployer stops this deployment.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
`,
    'test/app.test.js': `import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GREETING, createApp } from '../app.js';

let server;
let base;
before(async () => {
  server = createApp();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = \`http://127.0.0.1:\${server.address().port}\`;
});
after(() => new Promise((resolve) => server.close(resolve)));

test('GET /health answers 200', async () => {
  const res = await fetch(\`\${base}/health\`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
});

test('GET / greets', async () => {
  const res = await fetch(\`\${base}/\`);
  assert.equal(res.status, 200);
  assert.equal((await res.json()).message, GREETING);
});

test('unknown paths are 404', async () => {
  const res = await fetch(\`\${base}/nope\`);
  assert.equal(res.status, 404);
});
`,
    'README.md': `# ${DEMO_SERVICE_NAME}\n\nA tiny HTTP service built by Autopack.\n\n- \`GET /health\`: 200 \`{"status":"ok"}\`\n- \`GET /\`: a greeting\n\nRun it with \`PORT=3000 node server.js\`; test it with \`${DEMO_SERVICE_TEST_COMMAND}\`.\n`,
  };
}

/** The service's files as the demo builds it. */
export const DEMO_SERVICE_FILES: Record<string, string> = demoServiceFiles();
