import type { AttemptRecord, CiSpec, ClaimResponse } from '@app/contracts';
import type { PlanBudgets, PlanningCategory } from '@app/domain';
import type { BuilderContext, RepositoryMap } from './context.js';

/**
 * The Builder's system prompt. Stable across phases and attempts so providers can cache it
 * (Anthropic cache_control, OpenAI automatic prefix caching).
 */
export const BUILDER_SYSTEM_PROMPT = `You are the Builder of Autopack, an autonomous software build system.
You change a git repository to complete exactly one phase of a plan, and you report the change by calling the tool submit_changes. Never answer in prose; never produce a diff.

Rules for edits:
- Paths are relative to the repository root and use "/". Never touch .git, node_modules or anything outside the phase scope.
- "create" makes a new file with the complete content. "replace" gives the complete new content of an existing small file: never abbreviate, never write "..." or "rest unchanged".
- "edit" replaces one exact, unique piece of an existing file: "search" must match the current file exactly once (include enough surrounding lines). Files shown with line numbers are large: change them only with "edit", and do not include the line-number prefixes in "search" or "replace".
- "delete" removes a file; "rename" moves it to "new_path".
- Keep changes minimal and focused on the phase. JSON and YAML must stay valid. Never leave merge-conflict markers.
- If feedback from an earlier attempt is given, fix exactly what it reports.
- Report concerns you could not resolve in "issues" (severity minor or major).`;

/** The Auditor's system prompt (stable, cacheable). */
export const AUDITOR_SYSTEM_PROMPT = `You are the Auditor of Autopack, an autonomous software build system.
You review one change (a unified diff) made by a Builder for one phase, against the phase's goal and acceptance criteria, and you report by calling the tool submit_review. Never answer in prose.

- approved: true only if the change does what the phase asks, meets the acceptance criteria, and introduces no bug, security problem or data loss.
- issues: each with a stable snake_case issue_key, severity "major" (must be fixed before the change is kept) or "minor" (acceptable, tracked), a category, a description and a location (file:line) when you can.
- Any major issue means approved must be false.`;

function feedbackSection(previous: AttemptRecord[]): string {
  const failed = previous.filter((a) => a.outcome !== 'complete');
  if (failed.length === 0) return '';
  const items = failed.slice(-3).map((a) => {
    const body = (a.feedback ?? a.reason ?? 'no details').trim();
    return `## Attempt ${a.attempt} failed (${a.outcome})\n${body.length > 6000 ? `${body.slice(0, 1000)}\n...\n${body.slice(-5000)}` : body}`;
  });
  return `# Feedback from earlier attempts (fix these)\n${items.join('\n\n')}\n\n`;
}

/** What a prompt says about the phase's CI command. */
export interface CiReport {
  command: string;
  /** Accepted: exit code 0, or no new failure when the branch head already failed. */
  passed: boolean;
  /** The unchanged branch head already fails this command. */
  baselineFailed: boolean;
  tail: string;
}

/**
 * A user prompt in two parts, ordered from the most stable to the least. Providers cache a
 * request's prefix (tools, system, then this `cacheable` part, with an Anthropic cache
 * breakpoint after it), so it holds only what the next requests repeat byte for byte.
 */
export interface PromptParts {
  /** The part the next requests repeat (e.g. every phase of the run); may be empty. */
  cacheable: string;
  /** What follows: what changes from phase to phase and attempt to attempt. */
  prompt: string;
}

/**
 * Path order with each directory's subdirectories before its own files (as file trees list
 * them): a directory's top-level files (index, config, manifest) are the ones phases in other
 * directories also name or change, so they come after the deeper files that stay put.
 */
export function treeOrder(a: { path: string }, b: { path: string }): number {
  const x = a.path.split('/');
  const y = b.path.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    const xDir = i < x.length - 1;
    const yDir = i < y.length - 1;
    if (xDir !== yDir) return xDir ? -1 : 1;
    return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

/**
 * The Builder's user prompt for one attempt; `baselineFailed`: CI already fails on the branch head.
 *
 * Order, most stable first: the files of the phase's directories that the run has not changed,
 * in path order, subdirectories first (the cacheable part: consecutive phases working in the same directories repeat
 * it), then the files earlier phases changed, then the files only this phase names, then the
 * phase, its scope and verification, then the feedback of earlier attempts. Which shown files are editable is said with the scope, so the
 * repository context reads the same whatever the phase may change.
 */
export function builderPrompt(claim: ClaimResponse, context: BuilderContext, opts: { baselineFailed?: boolean } = {}): PromptParts {
  const p = claim.phase;
  const show = (f: (typeof context.files)[number]) =>
    `## ${f.path}${f.large ? ` (large: ${f.lines} lines, shown with line numbers; change it only with "edit")` : ''}\n\`\`\`\n${f.content}\n\`\`\``;
  const stable = context.files.filter((f) => f.stable).sort(treeOrder);
  const changed = context.files.filter((f) => !f.stable && f.changed).sort(treeOrder);
  const phaseOnly = context.files.filter((f) => !f.stable && !f.changed).sort(treeOrder);
  const cacheable = stable.length
    ? `# Repository context\nComplete content, in path order (subdirectories first). Which of these files you may change is said below, under "Files you may change".\n\n${stable.map(show).join('\n\n')}`
    : '';
  const parts: string[] = [];
  if (changed.length) parts.push(`# Files changed earlier in this run (complete, current content)\n${changed.map(show).join('\n\n')}`);
  if (phaseOnly.length) parts.push(`# More files for this phase (complete content)\n${phaseOnly.map(show).join('\n\n')}`);
  parts.push(`# Phase ${p.phase_id}: ${p.name}\n${p.description ?? ''}\n\nTask category: ${claim.strategy.task_category}; complexity: ${claim.strategy.complexity}; attempt ${claim.attempt} of ${claim.max_attempts}.`);
  if (p.acceptance_criteria.length) parts.push(`# Acceptance criteria\n${p.acceptance_criteria.map((c) => `- ${c}`).join('\n')}`);
  const scope = p.scope?.paths ?? [];
  const editable = context.files.filter((f) => f.editable).sort(treeOrder);
  const shownInScope = context.files.length
    ? editable.length
      ? `\nFiles shown above that you may change: ${editable.map((f) => f.path).join(', ')}. Every other file shown is read-only context (do not modify).`
      : '\nEvery file shown above is read-only context (do not modify).'
    : '';
  parts.push(
    (scope.length
      ? `# Files you may change\nOnly these paths (a trailing "/" means everything below): ${scope.join(', ')}`
      : `# Files you may change\nAny file in the repository except protected paths (${claim.run.protected_paths.join(', ') || 'none beyond .git'}).`) + shownInScope,
  );
  const ci = p.ci ?? claim.run.ci;
  if (ci) {
    parts.push(
      opts.baselineFailed
        ? `# Verification\nThe command \`${ci.command}\` already fails on the branch before your change. Your change must not add any failure to its output; fixing the existing failures is not required unless the phase asks for it.`
        : `# Verification\nAfter your change, this command must succeed: \`${ci.command}\``,
    );
  }
  if (context.missing.length) parts.push(`# Scoped paths that do not exist yet (you may create them)\n${context.missing.map((m) => `- ${m}`).join('\n')}`);
  if (context.omitted.length) parts.push(`# Files not shown\n${context.omitted.map((o) => `- ${o.path}: ${o.reason}`).join('\n')}`);
  const fb = feedbackSection(claim.previous_attempts);
  if (fb) parts.push(fb.trim());
  parts.push('Call submit_changes now.');
  return { cacheable, prompt: parts.join('\n\n') };
}

/** The Auditor's user prompt. */
export function auditorPrompt(claim: ClaimResponse, diff: string, ci: CiReport | null, summary: string): string {
  const p = claim.phase;
  const parts = [
    `# Phase ${p.phase_id}: ${p.name}\n${p.description ?? ''}\nTask category: ${claim.strategy.task_category}. Auditor profile: ${claim.strategy.auditor_profile ?? 'general'}.`,
  ];
  if (p.acceptance_criteria.length) parts.push(`# Acceptance criteria\n${p.acceptance_criteria.map((c) => `- ${c}`).join('\n')}`);
  parts.push(`# Builder's summary\n${summary}`);
  if (ci) {
    const verdict = !ci.passed ? 'FAILED' : ci.baselineFailed ? 'no new failures (the command already failed on the branch before this change)' : 'passed';
    parts.push(`# CI (\`${ci.command}\`): ${verdict}\n\`\`\`\n${ci.tail.slice(-3000)}\n\`\`\``);
  }
  parts.push(`# The change\n\`\`\`diff\n${diff}\n\`\`\``);
  parts.push('Call submit_review now.');
  return parts.join('\n\n');
}

/** The Planner's system prompt (stable, cacheable). */
export const PLANNER_SYSTEM_PROMPT = `You are the Planner of Autopack, an autonomous software build system.
You turn an intent (one or a few sentences) into a plan of tiers and phases that Builders will carry out one phase at a time, and you report it by calling the tool submit_plan. Never answer in prose.

Rules for the plan:
- Tiers run in tier_index order; a tier starts when the one before it is complete. Phases of a tier run in phase_index order. Ids use letters, digits, "_", "-" and are unique.
- Each phase is one focused change a Builder can make in one reply: a name, a description of what to build, acceptance criteria, a task_category from the category table, and a scope (scope.paths: the files or directories, ending in "/", it may change; relative paths inside the repository, never .git).
- Give every phase that changes code a CI command (ci.command) that verifies it, such as the project's test command; a phase whose category needs CI must have one.
- Keep the plan within the budgets: the sum of the incident token caps of your phases' categories must fit the tokens left, and the number of phases must fit the phase limit. Prefer few, well-scoped phases.
- If feedback from an earlier attempt is given, fix every problem it names.`;

/** What the planner is told: the intent, the repository, the categories it may use and the budgets. */
export interface PlannerPromptInput {
  intent: string;
  repository: RepositoryMap;
  categories: readonly PlanningCategory[];
  budgets: PlanBudgets;
  /** The run's default CI command, used by phases without one of their own. */
  runCi?: CiSpec | null;
  previousAttempts?: AttemptRecord[];
}

const formatTokens = (n: number) => n.toLocaleString('en-US');

/**
 * The Planner's user prompt for one attempt. Order, most stable first: the category table (the
 * ruleset's), the repository map (the cacheable part, repeated by every attempt and by the
 * next build on the same commit), then the intent, the budgets (they shrink with each
 * attempt) and the feedback.
 */
export function plannerPrompt(input: PlannerPromptInput): PromptParts {
  const rows = input.categories.map(
    (c) =>
      `| ${c.category}${c.aliases.length ? ` (also ${c.aliases.join(', ')})` : ''} | ${c.highRisk ? 'yes' : 'no'} | ${c.complexity} | ${c.ciProfile}${c.needsCi ? ', CI required' : ''} | ${c.maxBuilderAttempts} | ${formatTokens(c.incidentTokenCap)} |`,
  );
  const { files, truncated } = input.repository;
  const cacheable = [
    `# Task categories\nA phase without task_category is generic.\n\n| task_category | high risk | complexity | CI profile | builder attempts | incident token cap |\n|---|---|---|---|---|---|\n${rows.join('\n')}`,
    files.length
      ? `# Repository (${files.length}${truncated ? '+' : ''} files: path, bytes)\n${files.map((f) => `- ${f.path} (${f.bytes})`).join('\n')}${truncated ? '\n- ... more files not listed' : ''}`
      : '# Repository\nThe repository is empty: the plan creates everything, starting with the project layout and its test command.',
  ].join('\n\n');
  const parts: string[] = [`# Intent\n${input.intent.trim()}`];
  const b = input.budgets;
  const budgetLines = [
    `- Tokens left for the planned phases: ${formatTokens(b.tokensLeft)} (the sum of your phases' incident token caps must not exceed it)`,
    `- Phases: at most ${b.maxPhases}`,
    b.costLeftUsd === null ? '- Cost: no cap' : `- Cost left: $${b.costLeftUsd.toFixed(2)}`,
  ];
  if (input.runCi) budgetLines.push(`- Phases without ci use the run's CI command: \`${input.runCi.command}\``);
  parts.push(`# Budgets\n${budgetLines.join('\n')}`);
  const fb = feedbackSection(input.previousAttempts ?? []);
  if (fb) parts.push(fb.trim());
  parts.push('Call submit_plan now.');
  return { cacheable, prompt: parts.join('\n\n') };
}
