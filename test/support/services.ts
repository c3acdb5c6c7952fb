import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createSampleRepository } from '@app/git';

/*
 * A coordinator's services directory for tests: git repositories written with isomorphic-git
 * (no git binary), one per stage the coordinator must tell apart.
 */

const AUTHOR = { name: 'Test', email: 'test@localhost' };

const PACKAGE_JSON = JSON.stringify({ name: 'svc', version: '1.0.0', type: 'module', scripts: { test: 'node --test' } }, null, 2) + '\n';
const SPEC = '# SPEC\n\nA tiny library.\n';
const INDEX = 'export function add(a, b) {\n  return a + b;\n}\n';

/** The files of each kind of service. */
export const SERVICE_FILES = {
  /** README only: needs_spec. */
  noSpec: { 'README.md': '# Quotes\n\nA tiny HTTP service that serves a random quote.\n' },
  /** A SPEC and foundation files only: ready_for_build. */
  specOnly: { 'README.md': '# Spec only\n', 'SPEC.md': SPEC, '.gitignore': 'node_modules/\n' },
  /** Code, no tests: needs_tests. */
  noTests: { 'README.md': '# Adder\n', 'SPEC.md': SPEC, 'package.json': PACKAGE_JSON, 'src/index.js': INDEX },
  /** A failing node:test test: tests_failing. */
  failing: {
    'README.md': '# Adder\n',
    'SPEC.md': SPEC,
    'package.json': PACKAGE_JSON,
    'src/index.js': 'export function add(a, b) {\n  return a - b;\n}\n',
    'test/index.test.js': "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { add } from '../src/index.js';\n\ntest('add', () => assert.equal(add(2, 3), 5));\n",
  },
  /** Passing tests: ready_for_deploy. */
  passing: {
    'README.md': '# Adder\n',
    'SPEC.md': SPEC,
    'package.json': PACKAGE_JSON,
    'src/index.js': INDEX,
    'test/index.test.js': "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { add } from '../src/index.js';\n\ntest('add', () => assert.equal(add(2, 3), 5));\n",
  },
} satisfies Record<string, Record<string, string>>;

/** Creates `dir/<name>` as a git repository on `main` with `files` committed. */
export async function createService(dir: string, name: string, files: Record<string, string>): Promise<string> {
  const repo = path.join(dir, name);
  mkdirSync(repo, { recursive: true });
  await createSampleRepository(repo, files, { author: AUTHOR, message: `${name}: initial`, date: new Date('2026-01-01T00:00:00Z') });
  return repo;
}
