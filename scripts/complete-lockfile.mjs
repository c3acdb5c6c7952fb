#!/usr/bin/env node
// Some registries (including the one this project is developed against) do not carry every
// platform-specific optional binary (e.g. @unrs/resolver-binding-* for Android or Windows).
// `npm install` then leaves those entries out of package-lock.json and `npm ci` refuses the
// lock as "out of sync". This adds the missing optional entries with the os/cpu/libc their
// names encode, so `npm ci` accepts the lock and skips them on platforms that do not match.
// Run it after `npm install` changes the lock: `node scripts/complete-lockfile.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const LOCK = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(LOCK, 'utf8'));
const packages = lock.packages;

function platformOf(name) {
  const suffix = name.split('/').pop().replace(/^resolver-binding-/, '');
  const [os, cpu, abi] = suffix.split('-');
  const entry = { os: [os === 'openharmony' ? 'openharmony' : os], cpu: [cpu === 'arm' ? 'arm' : cpu] };
  if (os === 'linux') entry.libc = [abi?.startsWith('musl') ? 'musl' : 'glibc'];
  if (os === 'wasm32') return { cpu: ['wasm32'] };
  return entry;
}

let added = 0;
for (const [path, pkg] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    if (!dep.startsWith('@unrs/resolver-binding-')) continue;
    const base = path ? `${path}/node_modules/` : 'node_modules/';
    if (packages[`${base}${dep}`] || packages[`node_modules/${dep}`]) continue;
    packages[`node_modules/${dep}`] = { version, ...(pkg.dev ? { dev: true } : {}), optional: true, ...platformOf(dep) };
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} optional platform entries`);
