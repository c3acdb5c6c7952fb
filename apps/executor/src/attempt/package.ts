import { lstatSync } from 'node:fs';
import path from 'node:path';
import type { CiSpec, ClaimResponse, SubmitPlanArgs } from '@app/contracts';
import type { Logger } from 'pino';
import type { IntegrationBranch } from '../integration-branch.js';
import { SPEC_PATH, inlineCode } from '../spec-markdown.js';
import { AppliedChange } from './applied-change.js';
import { type AttemptGit, type BuildGit, branchHeadOrNull } from './ports.js';
import { publish } from './publish.js';
import { throwIfStopped } from './stop.js';

/** The foundation files the Package step may add, each only when the repository has none. */
export const FOUNDATION_FILES = ['README.md', '.gitignore'] as const;

/** What the Package step packages from: the build's intent and name, and its plan. */
export interface PackageInput {
  /** The build's intent (`architect_intent`): the README's description. */
  intent: string;
  /** The build's name (`droplet_name`); the README's title, else the intent's first line. */
  name?: string;
  plan: SubmitPlanArgs;
  /** The run's CI command, if any: with the phases' own, the README's test command(s). */
  runCi: CiSpec | null;
}

/**
 * What packaging produced: the foundation files the repository lacked, committed as the phase's
 * one commit (`sha`), or nothing to add (`sha: null`, `files: []`, no commit); or another
 * executor pushed first and the commit was dropped (`phaseCommit`: this phase's commit on what
 * won, if any).
 */
export type PackageResult = { kind: 'packaged'; sha: string | null; parent: string | null; files: string[] } | { kind: 'push_lost'; phaseCommit: string | null };

/**
 * One group of `.gitignore` lines and the path segments it would hide. A group is left out
 * when it would hide a file the repository tracks or a path a planned phase may write:
 * `commitChanges` skips new ignored files, so an ignored path would silently lose a later
 * phase's work.
 */
interface IgnoreGroup {
  lines: string[];
  hides(segment: string): boolean;
}

const IGNORE_GROUPS: IgnoreGroup[] = [
  { lines: ['node_modules/'], hides: (s) => s === 'node_modules' },
  { lines: ['dist/', 'build/'], hides: (s) => s === 'dist' || s === 'build' },
  { lines: ['coverage/'], hides: (s) => s === 'coverage' },
  { lines: ['.env', '.env.*', '!.env.example'], hides: (s) => s === '.env' || (s.startsWith('.env.') && s !== '.env.example') },
  { lines: ['__pycache__/', '.venv/'], hides: (s) => s === '__pycache__' || s === '.venv' },
  { lines: ['*.log', '.DS_Store'], hides: (s) => s.endsWith('.log') || s === '.DS_Store' },
];

/** The `.gitignore` of a new repository: dependencies, build output, coverage, local secrets, logs. */
export function foundationGitignore(kept: readonly string[]): string {
  const segments = new Set(kept.flatMap((p) => p.split('/').filter(Boolean)));
  const groups = IGNORE_GROUPS.filter((g) => ![...segments].some((s) => g.hides(s)));
  return `${groups.flatMap((g) => g.lines).join('\n')}\n`;
}

const firstLine = (s: string) =>
  s
    .split('\n')
    .map((l) => l.trim())
    .find(Boolean) ?? '';

/** The title of the README: the build's name, else the intent's first line (at most 80 characters). */
function readmeTitle(input: PackageInput): string {
  const title = firstLine(input.name ?? '') || firstLine(input.intent) || 'Service';
  return title.length > 80 ? `${title.slice(0, 77).trimEnd()}...` : title;
}

/** Distinct CI commands, the run's first, then the phases' in plan order. */
export function planCiCommands(plan: SubmitPlanArgs, runCi: CiSpec | null): string[] {
  const commands = [runCi?.command, ...plan.phases.map((p) => p.ci?.command)].filter((c): c is string => typeof c === 'string' && c.trim() !== '');
  return [...new Set(commands)];
}

/**
 * The README of a new repository: the title, the intent, the plan in brief, where the planned
 * phases work (the layout) and how the work is tested (the test commands). It names what the
 * plan says and invents nothing; a SPEC link is added when the repository has one.
 */
export function foundationReadme(input: PackageInput, hasSpec: boolean): string {
  const { plan } = input;
  const out = [`# ${readmeTitle(input)}`, '', input.intent.trim(), ''];
  out.push('## Plan', '');
  if (hasSpec) out.push(`The full plan is in [${SPEC_PATH}](${SPEC_PATH}).`, '');
  const tiers = [...plan.tiers].sort((a, b) => a.tier_index - b.tier_index);
  for (const t of tiers) {
    const phases = plan.phases.filter((p) => p.tier_id === t.tier_id).sort((a, b) => a.phase_index - b.phase_index);
    out.push(`- ${t.name}: ${phases.map((p) => p.name).join('; ') || '(no phases)'}`);
  }
  out.push('');
  const layout = plan.phases.flatMap((p) => (p.scope?.paths ?? []).map((scope) => ({ scope, phase: p.name })));
  if (layout.length > 0) {
    out.push('## Layout', '');
    const seen = new Set<string>();
    for (const { scope, phase } of layout) {
      if (seen.has(scope)) continue;
      seen.add(scope);
      out.push(`- ${inlineCode(scope)}: ${phase}`);
    }
    out.push('');
  }
  const commands = planCiCommands(plan, input.runCi);
  if (commands.length > 0) {
    out.push('## Tests', '', commands.length === 1 ? 'Run the tests with:' : 'Run the tests with each of:', '');
    for (const c of commands) out.push(`- ${inlineCode(c)}`);
    out.push('');
  }
  return out.join('\n');
}

/** True when something (a file, directory or link) is at `file` in the working tree. */
function onDisk(workspace: string, file: string): boolean {
  try {
    lstatSync(path.join(workspace, file));
    return true;
  } catch {
    return false;
  }
}

/**
 * Step 2 (Package): commits the foundation files the repository lacks, as the phase's one
 * commit, or nothing at all. The rule, the same for every language:
 *
 * - `README.md` when the repository has no README of any extension at its root: the intent,
 *   the plan in brief, the layout (the planned phases' paths) and the test command(s);
 * - `.gitignore` when it has none at its root: dependencies, build output, coverage, local
 *   secrets and logs, less any entry that would hide a tracked file or a planned path.
 *
 * The test command and the layout are hints in the README only: no manifest, test scaffold or
 * directory is created, and no existing file is ever changed or overwritten (anything already
 * on disk at a foundation path is left alone too), because the planned phases and their CI
 * commands own the code. The files are deterministic, so a retried attempt commits the same
 * bytes. The caller has synced the branch (`syncBranch` returned `ready`).
 */
export async function packageFoundation(
  deps: { git: AttemptGit; buildGit: Pick<BuildGit, 'listTrackedFiles'>; workspace: string; log: Logger },
  claim: ClaimResponse,
  integration: IntegrationBranch,
  input: PackageInput & { signal: AbortSignal },
): Promise<PackageResult> {
  const { git, buildGit, workspace, log } = deps;
  throwIfStopped(input.signal);
  const head = await branchHeadOrNull(git, workspace, integration.branch);
  const tracked = head === null ? [] : await buildGit.listTrackedFiles(workspace, head);
  const hasReadme = tracked.some((p) => /^readme(\.[^/]*)?$/i.test(p));
  const hasGitignore = tracked.includes('.gitignore');

  const scopes = input.plan.phases.flatMap((p) => p.scope?.paths ?? []);
  const wanted: { path: string; content: () => string }[] = [];
  if (!hasReadme) wanted.push({ path: 'README.md', content: () => foundationReadme(input, tracked.includes(SPEC_PATH)) });
  if (!hasGitignore) wanted.push({ path: '.gitignore', content: () => foundationGitignore([...tracked, ...scopes]) });
  const files = wanted.filter((f) => !onDisk(workspace, f.path)).map((f) => ({ path: f.path, before: null, after: f.content() }));
  const skipped = wanted.filter((f) => !files.some((g) => g.path === f.path)).map((f) => f.path);
  if (skipped.length > 0) log.warn({ paths: skipped }, 'foundation files not tracked but present in the working tree; left alone');
  if (files.length === 0) {
    log.info({ head }, 'the repository has its foundation files; nothing to package');
    return { kind: 'packaged', sha: null, parent: head, files: [] };
  }

  const written = files.map((f) => f.path);
  const working = AppliedChange.apply(workspace, { files, written, deleted: [] }, { runId: claim.run_id, phaseId: claim.phase_id, attempt: claim.attempt });
  try {
    const published = await publish({ git }, claim, integration, { working, summary: `foundation files: ${written.join(', ')}`, written, deleted: [], signal: input.signal });
    if (published.kind === 'push_lost') return published;
    log.info({ sha: published.sha, files: written }, 'foundation files committed');
    return { kind: 'packaged', sha: published.sha, parent: published.parent, files: written };
  } finally {
    working.restore();
  }
}
