import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dashboardDir, dashboardHtml, isPublicDashboardPath } from './dashboard.js';

describe('dashboard serving', () => {
  it('finds dist/dashboard at the package root (the sources here, dist/ in a build or an image)', () => {
    const dir = dashboardDir({});
    expect(dir.endsWith(`${path.sep}dist${path.sep}dashboard`)).toBe(true);
    expect(dashboardDir({ AUTOPACK_DASHBOARD_DIR: '/srv/ui' })).toBe('/srv/ui');
  });

  it('serves the built index.html, or a page saying to build when it is missing', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dash-'));
    expect(dashboardHtml(dir)).toContain('npm run build');
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><p>built</p>');
    expect(dashboardHtml(dir)).toContain('built');
  });

  it.each([
    ['GET', '/dashboard', true],
    ['GET', '/dashboard/', true],
    ['GET', '/dashboard/assets/index-abc.js', true],
    ['GET', '/dashboard/session', true],
    ['POST', '/dashboard/session', true],
    ['DELETE', '/dashboard/session', true],
    ['POST', '/dashboard', false],
    ['GET', '/dashboardx', false],
    ['GET', '/dashboard/other', false],
    ['PUT', '/dashboard/session', false],
    ['GET', '/runs', false],
    ['GET', '/docs', false],
    ['GET', '/openapi.json', false],
  ])('%s %s is public: %p (shell, code and login only; never data)', (method, p, open) => {
    expect(isPublicDashboardPath(method, p)).toBe(open);
  });
});
