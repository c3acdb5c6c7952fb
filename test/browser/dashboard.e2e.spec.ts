import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { flatPlan, http, samplePlan, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/*
 * The web dashboard in a real browser (Debian's Chromium, headless) on a supervisor with an
 * API key: the key is typed once; the run board moves live (SSE through the session cookie)
 * while the test drives a run over HTTP; a run waiting at `final` is approved from the UI;
 * /docs opens in the same session; and a fresh browser reads none of it.
 */

const CHROMIUM = '/usr/bin/chromium';
const KEY = 'dashboard-e2e-key-0123456789';
const H = { 'x-api-key': KEY };
const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../artifacts');

let sup: TestSupervisor;
let browser: Browser;
let session: BrowserContext;
let page: Page;

const shot = (p: Page, name: string) => p.screenshot({ path: path.join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true });

/** Claims the next phase of `runId` as an executor would (with the key in a header). */
async function claim(runId: string) {
  const r = await http(sup.url, 'POST', '/phases/claim', { executor_id: 'browser-test', run_id: runId }, H);
  if (r.status !== 200) throw new Error(`claim ${runId}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as { phase_id: string; lease_token: string };
}

/** Reports a claimed phase built and committed. */
async function complete(runId: string, c: { phase_id: string; lease_token: string }) {
  const p = `/runs/${runId}/phases/${c.phase_id}`;
  const b = await http(sup.url, 'POST', `${p}/builder_result`, { lease_token: c.lease_token, status: 'success', suggested_issues: [], usage: { prompt_tokens: 1200, completion_tokens: 300 } }, H);
  if (b.status !== 200) throw new Error(`builder_result: ${b.status} ${JSON.stringify(b.body)}`);
  const d = await http(sup.url, 'POST', `${p}/update_status`, { lease_token: c.lease_token, state: 'COMPLETE', commit_sha: 'ab'.repeat(20) }, H);
  if (d.status !== 200) throw new Error(`update_status: ${d.status} ${JSON.stringify(d.body)}`);
}

const card = (phaseId: string) => page.locator(`#board .card[data-phase="${phaseId}"]`);

beforeAll(async () => {
  // Never skipped: a machine without Chromium fails this test, saying why.
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) to run the dashboard browser test`);
  mkdirSync(ARTIFACTS, { recursive: true });
  sup = await startTestSupervisor({ apiKey: KEY });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  session = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await session.newPage();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await sup?.close();
});

describe('the web dashboard with an API key', () => {
  it('asks for the key once, then shows runs and builds', async () => {
    expect((await http(sup.url, 'POST', '/runs/start', samplePlan('live-run', { project_id: 'web' }), H)).status).toBe(201);
    expect((await http(sup.url, 'POST', '/runs/start', flatPlan('final-run', 1, { approval_mode: 'final', project_id: 'web' }), H)).status).toBe(201);

    const res = await page.goto(`${sup.url}/dashboard`);
    expect(res?.status()).toBe(200);
    await page.locator('form.login').waitFor();
    await shot(page, 'login');

    await page.fill('input[name=key]', 'not-the-key');
    await page.click('button[type=submit]');
    await expect(page.locator('form.login [role=alert]').textContent()).resolves.toContain('Wrong API key');

    await page.fill('input[name=key]', KEY);
    await page.click('button[type=submit]');
    await page.locator('#runs tr[data-run="live-run"]').waitFor();
    await page.locator('#runs tr[data-run="final-run"]').waitFor();
    await page.locator('#builds').waitFor();

    const cookie = (await session.cookies()).find((c) => c.name === 'autopack_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(cookie?.value).not.toContain(KEY);
    // Once: a reload keeps the session (no second prompt).
    await page.reload();
    await page.locator('#runs tr[data-run="live-run"]').waitFor();
    expect(await page.locator('form.login').count()).toBe(0);
    await shot(page, 'runs');
  });

  it("shows a running run's phases move without reloading", async () => {
    await page.click('#runs a[href="#/runs/live-run"]');
    await page.locator('.live.on').waitFor();
    await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
    await card('p1').locator('xpath=..').and(page.locator('[data-stage=queued]')).waitFor();

    const c1 = await claim('live-run');
    await page.locator(`[data-stage=executing] .card[data-phase="${c1.phase_id}"]`).waitFor();
    await complete('live-run', c1);
    await page.locator(`[data-stage=complete] .card[data-phase="${c1.phase_id}"]`).waitFor();
    await card(c1.phase_id).locator('details summary').click();
    await expect(card(c1.phase_id).textContent()).resolves.toContain('#1 by browser-test');

    const c2 = await claim('live-run');
    await page.locator(`[data-stage=executing] .card[data-phase="${c2.phase_id}"]`).waitFor();
    await page.locator('#events li', { hasText: 'phase_claimed' }).first().waitFor();
    await shot(page, 'run');
    await complete('live-run', c2);
    await page.locator(`[data-stage=complete] .card[data-phase="${c2.phase_id}"]`).waitFor();

    expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  });

  it('approves a run waiting at final', async () => {
    await complete('final-run', await claim('final-run'));
    expect((await http(sup.url, 'GET', '/runs/final-run', undefined, H)).body.state).toBe('AWAITING_APPROVAL');

    await page.goto(`${sup.url}/dashboard#/runs/final-run`);
    await page.locator('#run-state', { hasText: 'AWAITING_APPROVAL' }).waitFor();
    await shot(page, 'awaiting-approval');
    await page.click('#approve');
    await page.locator('#run-state', { hasText: 'DONE_SUCCESS' }).waitFor();
    expect((await http(sup.url, 'GET', '/runs/final-run', undefined, H)).body).toMatchObject({ state: 'DONE_SUCCESS', approval_state: 'approved' });
  });

  it('shows a phase no live executor can take as waiting, and the executors that claimed', async () => {
    const plan = flatPlan('devops-run', 1, { project_id: 'web' });
    (plan.phases[0] as { requires?: string[] }).requires = ['devops'];
    expect((await http(sup.url, 'POST', '/runs/start', plan, H)).status).toBe(201);
    await page.goto(`${sup.url}/dashboard#/runs/devops-run`);
    await page.locator('#board .card [data-waiting-for="devops"]').waitFor();
    await expect(page.locator('#board .card [data-waiting-for="devops"]').textContent()).resolves.toContain('waiting for an executor with devops');

    await page.goto(`${sup.url}/dashboard#/`);
    const row = page.locator('#executors tr[data-executor="browser-test"]');
    await row.waitFor();
    await expect(row.textContent()).resolves.toMatch(/builder.*active/);
    await shot(page, 'executors');
  });

  it('opens the assembly line: services by stage with cycle times, and assign now', async () => {
    const observe = (service: string, stage: string) => http(sup.url, 'POST', `/coordinator/services/${service}/observe`, { path: `/srv/${service}`, stage }, H);
    expect((await observe('billing', 'ready_for_deploy')).status).toBe(200);
    expect((await observe('billing', 'production')).status).toBe(200);
    expect((await observe('search', 'ready_for_deploy')).status).toBe(200);
    const before = (await http(sup.url, 'GET', '/coordinator/pass', undefined, H)).body.request_id as number;

    await page.goto(`${sup.url}/dashboard#/`);
    await page.reload(); // a fresh overview, not the next poll of the one already open
    await page.locator('#line [data-stage=production] .card[data-service=billing]').waitFor();
    await page.locator('#line [data-stage=ready_for_deploy] .card[data-service=search]').waitFor();
    await expect(page.locator('#line .card[data-service=billing]').textContent()).resolves.toMatch(/ready for deploy \d+ s/);
    await page.locator('#line [data-cycle=ready_for_deploy]').waitFor();
    await page.click('#assign-now');
    await page.locator('#assign-status', { hasText: 'requested' }).waitFor();
    expect((await http(sup.url, 'GET', '/coordinator/pass', undefined, H)).body.request_id).toBe(before + 1);
    await shot(page, 'assembly-line');
  });

  it('opens /docs in the same session', async () => {
    const docs = await session.newPage();
    const res = await docs.goto(`${sup.url}/docs`);
    expect(res?.status()).toBe(200);
    await docs.locator('.swagger-ui .info .title', { hasText: 'Autopack supervisor' }).waitFor();
    await docs.locator('.opblock-summary-path', { hasText: '/runs/{run_id}' }).first().waitFor();
    await shot(docs, 'docs');
    await docs.close();
  });

  it('reads nothing without the session: a fresh browser gets the login form and 401 for data, the stream and /docs', async () => {
    const fresh = await browser.newContext();
    const p = await fresh.newPage();
    await p.goto(`${sup.url}/dashboard`);
    await p.locator('form.login').waitFor();
    const statuses = await p.evaluate(async (paths) => Promise.all(paths.map(async (u) => (await fetch(u)).status)), [
      '/runs',
      '/runs/live-run',
      '/executor/builds',
      '/runs/live-run/events?follow=false',
      '/runs/live-run/issues/index',
      '/project/issues/backlog?project_id=web',
      '/docs',
      '/docs/assets/swagger-ui-bundle.js',
      '/openapi.json',
    ]);
    expect(statuses).toEqual(Array(9).fill(401));
    const docs = await p.goto(`${sup.url}/docs`);
    expect(docs?.status()).toBe(401);
    // A forged cookie is no better.
    await fresh.addCookies([{ name: 'autopack_session', value: KEY, url: sup.url }]);
    expect(await p.evaluate(async () => (await fetch('/runs')).status)).toBe(401);
    await fresh.close();
  });

  it('logs out: the cookie is cleared and the data is 401 again', async () => {
    await page.goto(`${sup.url}/dashboard`);
    await page.locator('#runs').waitFor();
    await page.click('button:has-text("Log out")');
    await page.locator('form.login').waitFor();
    expect((await session.cookies()).some((c) => c.name === 'autopack_session')).toBe(false);
    expect(await page.evaluate(async () => (await fetch('/runs')).status)).toBe(401);
  });
});
