import type { ServiceStage } from '@app/contracts';

/*
 * The coordinator's pure decisions (CONTRACT.md section 9): which stage a service is at, from
 * facts read off its base branch, and which test command it declares.
 */

/** What a coordinator pass knows about one service. */
export interface ServiceFacts {
  /** Tracked files of the base branch (repository-relative, `/`-separated); empty when it has no commit. */
  files: readonly string[];
  /** The test command's result on the base branch: true passed, false failed, null not run (no command). */
  testsPass: boolean | null;
  /** A build of this service completed with a deployment URL (deployed and registered). */
  deployed: boolean;
}

/** Files a repository may have before any code: they do not make it "built". */
export function isFoundationFile(file: string): boolean {
  if (file.includes('/')) return false;
  const name = file.toLowerCase();
  return name.startsWith('readme') || name.startsWith('license') || name === '.gitignore' || name === 'spec.md' || name === 'autopack.yaml' || name === 'autopack.yml';
}

/** A test file: under a `test/` or `tests/` directory, or named `*.test.*`, `*.spec.*`, `*_test.*` or `test_*.py`. */
export function isTestFile(file: string): boolean {
  const parts = file.split('/');
  if (parts.slice(0, -1).some((d) => d === 'test' || d === 'tests')) return true;
  const name = parts[parts.length - 1];
  return /\.(test|spec)\.[^/]+$/.test(name) || /_test\.[^./]+$/.test(name) || /^test_.+\.py$/.test(name);
}

/**
 * The stage of a service:
 * `needs_spec` (no SPEC.md), `ready_for_build` (a SPEC, nothing beyond the foundation files),
 * `needs_tests` (code, but no test file, or tests with no command to run them),
 * `tests_failing` (the test command fails), `ready_for_deploy` (tests pass, not deployed),
 * `production` (deployed and registered).
 */
export function detectStage(facts: ServiceFacts): ServiceStage {
  const { files } = facts;
  if (!files.includes('SPEC.md')) return 'needs_spec';
  if (files.every(isFoundationFile)) return 'ready_for_build';
  if (!files.some(isTestFile) || facts.testsPass === null) return 'needs_tests';
  if (!facts.testsPass) return 'tests_failing';
  return facts.deployed ? 'production' : 'ready_for_deploy';
}

/** The placeholder `npm init` writes: no test script at all. */
const NPM_PLACEHOLDER = /no test specified/i;

/** What a service's own files say about its tests (their contents on the base branch, null when absent). */
export interface TestCommandSources {
  /** `ci.command` of its `autopack.yaml`. */
  autopackCiCommand: string | null;
  /** `scripts.test` of its `package.json`. */
  packageTestScript: string | null;
  /** Its `Makefile`. */
  makefile: string | null;
}

/**
 * The service's test command: `autopack.yaml`'s `ci.command` (the explicit choice), else
 * `npm test` for a package.json `test` script (not npm's placeholder), else `make test` for a
 * Makefile with a `test:` target; null when none.
 */
export function testCommandOf(s: TestCommandSources): string | null {
  if (s.autopackCiCommand?.trim()) return s.autopackCiCommand.trim();
  if (s.packageTestScript?.trim() && !NPM_PLACEHOLDER.test(s.packageTestScript)) return 'npm test';
  if (s.makefile && /^test\s*:/m.test(s.makefile)) return 'make test';
  return null;
}

/** The first paragraph of a README (markdown headings and badges skipped), or null. */
export function readmeIntent(readme: string | null): string | null {
  if (!readme) return null;
  const paragraphs = readme
    .replace(/\r\n/g, '\n')
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p && !p.startsWith('#') && !p.startsWith('![') && !p.startsWith('[!['));
  const first = paragraphs[0];
  return first ? first.replace(/\s+/g, ' ').slice(0, 2000) : null;
}

/** Median and p90 (nearest rank) of a list of durations; null when empty. */
export function medianAndP90(values: readonly number[]): { median: number; p90: number } | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  const mid = sorted.length / 2;
  const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, p90: rank(0.9) };
}

/** A stage change as recorded: the service entered `to` (from `from`, null for the first sighting) at `at` (ms). */
export interface StageChange {
  from: ServiceStage | null;
  to: ServiceStage;
  at: number;
}

/** Seconds spent in each finished stage: from entering it to the next change (a stage entered twice adds up). */
export function cycleTimes(changes: readonly StageChange[]): Partial<Record<ServiceStage, number>> {
  const sorted = [...changes].sort((a, b) => a.at - b.at);
  const out: Partial<Record<ServiceStage, number>> = {};
  for (let i = 0; i + 1 < sorted.length; i++) {
    const stage = sorted[i].to;
    out[stage] = (out[stage] ?? 0) + (sorted[i + 1].at - sorted[i].at) / 1000;
  }
  return out;
}
