import { createHash } from 'node:crypto';
import { type ClaimResponse, type SubmitChangesArgs, SubmitChangesArgsSchema, TOOL_NAMES, type UsageReport, toolInputJsonSchema } from '@app/contracts';
import type { FileChange } from '@app/git';
import type { Logger } from 'pino';
import { REPEATED_EDITS_REASON, findRepeatedAttempt } from '../attempt-history.js';
import { buildContext } from '../context.js';
import { describePlan } from '../diff.js';
import { type ApplyPlan, DEFAULT_APPLY_LIMITS, EditRefusedError, planEdits } from '../governed-apply.js';
import { type ModelRouting, modelFor } from '../models.js';
import { BUILDER_SYSTEM_PROMPT, builderPrompt } from '../prompts.js';
import type { MeteredLlm } from './metered-llm.js';
import type { AttemptGit } from './ports.js';
import { routeOf } from './route.js';

const BUILDER_TOOL = {
  name: TOOL_NAMES.builder,
  description: 'Submit the complete set of file edits for this phase.',
  inputSchema: toolInputJsonSchema(SubmitChangesArgsSchema),
};

/** Why a build produced nothing to apply, as the attempt outcome it is reported with. */
export type BuildFailure = 'builder_failed' | 'repeated_edits' | 'refused';

/**
 * What the builder stage produced: nothing to apply (a malformed reply, edits identical to a
 * failed attempt's, or edits refused by the governed apply), or a plan ready to be written.
 */
export type BuildResult =
  | { kind: 'build_failed'; outcome: BuildFailure; reason: string; feedback: string; editsHash?: string; usage: UsageReport }
  | {
      kind: 'planned';
      args: SubmitChangesArgs;
      editsHash: string;
      plan: ApplyPlan;
      diff: string;
      linesAdded: number;
      linesRemoved: number;
      usage: UsageReport;
    };

/**
 * The files the run has changed so far: the difference between its base branch and the
 * workspace's head (the integration branch). Undefined when the base branch cannot be read
 * here (the builder's context then orders every file as if unchanged).
 */
async function changedInRun(git: Pick<AttemptGit, 'changedFiles'> | undefined, ws: string, baseBranch: string, log: Logger): Promise<ReadonlyMap<string, FileChange> | undefined> {
  if (!git) return undefined;
  try {
    return await git.changedFiles(ws, baseBranch, 'HEAD');
  } catch (err) {
    log.debug({ base_branch: baseBranch, err: (err as Error).message }, 'cannot compare with the base branch; context ordered without it');
    return undefined;
  }
}

/**
 * Stage 2: context, model, call, plan. Reads the workspace (context and the edits' targets) but
 * writes nothing: the plan is applied by the pipeline, as a disposable change.
 */
export async function build(
  deps: { llm: MeteredLlm; routing: ModelRouting; workspace: string; log: Logger; git?: Pick<AttemptGit, 'changedFiles'> },
  claim: ClaimResponse,
  opts: { baselineFailed: boolean; signal: AbortSignal },
): Promise<BuildResult> {
  const { llm, routing, workspace: ws, log } = deps;
  const { phase } = claim;
  const route = routeOf(claim);
  const builder = modelFor(routing, 'builder', route.task, route.step) ?? routing.defaults.builder;
  const scopePaths = phase.scope?.paths ?? [];
  const context = buildContext({
    root: ws,
    scopePaths,
    readOnlyPaths: phase.scope?.read_only_context ?? [],
    tokenBudget: Math.max(2_000, Math.min(120_000, Math.floor(claim.strategy.incident_token_cap / 4))),
    largeFileLines: DEFAULT_APPLY_LIMITS.maxLinesForReplace,
    changedInRun: await changedInRun(deps.git, ws, claim.run.base_branch, log),
  });
  const { cacheable, prompt } = builderPrompt(claim, context, { baselineFailed: opts.baselineFailed });

  log.info({ provider: builder.provider, model: builder.model, escalation_step: route.step }, 'calling the builder');
  const { result: built, reservationId } = await llm.call('builder', builder, {
    system: BUILDER_SYSTEM_PROMPT,
    cacheablePrefix: cacheable,
    prompt,
    tool: BUILDER_TOOL,
    maxTokens: routing.builderMaxTokens,
    temperature: 0.2,
    signal: opts.signal,
  });
  const usage = llm.attemptUsage(built, claim, 'builder', reservationId);
  const failed = (outcome: BuildFailure, reason: string, feedback: string, editsHash?: string): BuildResult => ({
    kind: 'build_failed',
    outcome,
    reason,
    feedback,
    ...(editsHash ? { editsHash } : {}),
    usage,
  });

  if (built.toolInput === undefined) {
    const why = built.malformedReason ?? 'no tool call';
    return failed('builder_failed', `malformed reply: ${why}`, `Your previous reply was rejected: ${why}. Reply only by calling ${TOOL_NAMES.builder} with arguments that match its schema.`);
  }
  const parsed = SubmitChangesArgsSchema.safeParse(built.toolInput);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.') || '(arguments)'}: ${i.message}`);
    return failed(
      'builder_failed',
      `malformed reply: arguments fail the ${TOOL_NAMES.builder} schema`,
      `Your previous ${TOOL_NAMES.builder} call had invalid arguments:\n${issues.map((i) => `- ${i}`).join('\n')}`,
    );
  }
  const args = parsed.data;
  const editsHash = createHash('sha256').update(JSON.stringify(args.edits)).digest('hex');

  // The same change as a failed attempt would fail the same way: do not spend CI and audit on it.
  const repeated = findRepeatedAttempt(claim.previous_attempts, editsHash);
  if (repeated) {
    return failed(
      'repeated_edits',
      `${REPEATED_EDITS_REASON}: identical to attempt ${repeated.attempt}`,
      `Your edits were identical to those of attempt ${repeated.attempt}, which failed (${(repeated.reason ?? repeated.outcome).slice(0, 500)}), so they were not applied again. Make a different change that fixes what that attempt's feedback reports.`,
      editsHash,
    );
  }

  let plan: ApplyPlan;
  try {
    plan = planEdits(ws, args.edits, {
      scopePaths,
      protectedPaths: claim.run.protected_paths,
      allowMassDeletion: phase.allow_mass_deletion,
      allowMassAddition: phase.allow_mass_addition,
      limits: DEFAULT_APPLY_LIMITS,
    });
  } catch (err) {
    if (!(err instanceof EditRefusedError)) throw err;
    return failed('refused', err.message, `Your previous edits were refused and nothing was written:\n${err.problems.map((p) => `- ${p}`).join('\n')}`, editsHash);
  }
  if (plan.files.length === 0) {
    return failed('refused', 'no changes: the edits leave every file as it was', 'Your previous edits changed nothing. Make the change the phase asks for.', editsHash);
  }
  return { kind: 'planned', args, editsHash, plan, ...describePlan(plan), usage };
}
