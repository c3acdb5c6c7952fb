import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the dashboard's built assets are: `dist/dashboard` of the package (written by the Vite
 * step of `npm run build`), found by walking up from this file to the package root, so the
 * compiled supervisor (dist/apps/...) and the sources under test find the same directory.
 * `AUTOPACK_DASHBOARD_DIR` overrides it.
 */
export function dashboardDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AUTOPACK_DASHBOARD_DIR) return path.resolve(env.AUTOPACK_DASHBOARD_DIR);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (isPackageRoot(dir)) return path.join(dir, 'dist', 'dashboard');
    const up = path.dirname(dir);
    if (up === dir) return path.resolve('dist', 'dashboard');
    dir = up;
  }
}

/** Whether `dir` holds this package's package.json (a container image has no sources beside dist/). */
function isPackageRoot(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'autopack';
  } catch {
    return false;
  }
}

/** Shown at /dashboard when the package was not built with its dashboard. */
const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Autopack dashboard</title></head>
<body><h1>Autopack dashboard</h1><p>The dashboard assets are missing: run <code>npm run build</code> in the package root.</p></body></html>`;

/** The dashboard's `index.html` (read once; its script and style names carry content hashes). */
export function dashboardHtml(dir: string): string {
  const file = path.join(dir, 'index.html');
  return existsSync(file) ? readFileSync(file, 'utf8') : NOT_BUILT;
}

/** Routes the API-key middleware lets through: the dashboard shell, its code and its login (never data). */
export function isPublicDashboardPath(method: string, p: string): boolean {
  if (p === '/dashboard/session') return ['GET', 'POST', 'DELETE'].includes(method);
  return method === 'GET' && (p === '/dashboard' || p === '/dashboard/' || p.startsWith('/dashboard/assets/'));
}
