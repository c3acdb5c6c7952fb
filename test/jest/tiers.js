/**
 * The four test tiers, one Jest project each (docs/ARCHITECTURE.md, "Test tiers"). Jest runs
 * in native ESM mode (see ../shared/STACK-NOTES.md): ts-jest with useESM.
 *
 * The root jest.config.js runs every tier; test/jest/<tier>.config.js runs one (the npm
 * scripts `test:unit`, `test:medium`, `test:e2e`, `test:reliability`). Separate files, not
 * `--selectProjects`: that flag takes a list, so it would swallow the paths npm appends.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const rootDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const typescript = {
  rootDir,
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: false }],
  },
  moduleNameMapper: {
    '^@app/(contracts|domain|llm|git|testing)$': '<rootDir>/libs/$1/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testTimeout: 60000,
  // A demo run inside the checkout leaves package.json files under .autopack/demo.
  modulePathIgnorePatterns: ['<rootDir>/.autopack/'],
};

/** PostgreSQL for the tiers that need it: DATABASE_URL, else the embedded cluster (from dist/). */
const withPostgres = {
  globalSetup: '<rootDir>/test/setup/global-setup.js',
  globalTeardown: '<rootDir>/test/setup/global-teardown.js',
  setupFiles: ['<rootDir>/test/setup/pg-boss-delay.cjs'],
};

export const tiers = {
  // Pure code, and code with fakes, next to it: no database, no build, no global setup.
  unit: {
    ...typescript,
    displayName: 'unit',
    testMatch: ['<rootDir>/apps/**/src/**/*.spec.ts', '<rootDir>/libs/**/src/**/*.spec.ts'],
  },
  // Supervisor services in a Nest testing module on a database cloned from a migrated template.
  medium: {
    ...typescript,
    ...withPostgres,
    displayName: 'medium',
    testMatch: ['<rootDir>/test/medium/**/*.spec.ts'],
  },
  // Whole processes built in dist/: HTTP, the CLI, the executor against a scripted LLM server.
  // Negated globs, not testPathIgnorePatterns: `npm test` passes its own ignore pattern on the
  // command line, which would replace a project's.
  e2e: {
    ...typescript,
    ...withPostgres,
    displayName: 'e2e',
    testMatch: ['<rootDir>/test/**/*.spec.ts', '!**/test/medium/**', '!**/test/reliability/**'],
  },
  // Kills, restarts and floods; the chaos scenario loads both cores, so `npm test` runs it alone.
  reliability: {
    ...typescript,
    ...withPostgres,
    displayName: 'reliability',
    testMatch: ['<rootDir>/test/reliability/**/*.spec.ts'],
  },
};

/** A Jest configuration running `projects`, with the options that apply to a whole run. */
export function runOf(...projects) {
  return {
    rootDir,
    projects,
    testTimeout: 60000,
    maxWorkers: 2,
    reporters: ['default', '<rootDir>/test/setup/summary-reporter.js'],
  };
}
