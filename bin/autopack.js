#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through `prepare`).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
const entry = fileURLToPath(new URL('../dist/apps/cli/src/main.js', import.meta.url));
if (!existsSync(entry)) {
  console.error('autopack: not built yet. Run `npm install` (or `npm run build`) in the project root.');
  process.exit(1);
}
await import(pathToFileURL(entry).href);
