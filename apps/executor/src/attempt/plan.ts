import { type ClaimResponse, LIMITS, type SubmitPlanArgs, SubmitPlanArgsSchema, TOOL_NAMES, type UsageReport, toolInputJsonSchema } from '@app/contracts';
import { type PlanBudgets, type PlanValidationContext, planProblemsFeedback, planningCategories, validatePlan } from '@app/domain';
import type { Logger } from 'pino';
import type { RepositoryMap } from '../context.js';
import { type ModelRouting, highestPricePerMTok, modelFor } from '../models.js';
import { PLANNER_SYSTEM_PROMPT, plannerPrompt } from '../prompts.js';
import { renderSpecMarkdown } from '../spec-markdown.js';
import type { MeteredLlm } from './metered-llm.js';
import { routeOf } from './route.js';

/** The forced planner tool: its input schema is the `submit_plan` zod schema's JSON Schema. */
export const PLANNER_TOOL = {
  name: TOOL_NAMES.planner,
  description: 'Submit the plan: the tiers and phases that build the intent.',
  inputSchema: toolInputJsonSchema(SubmitPlanArgsSchema),
};

/** What the planning step plans from. */
export interface PlanningInput {
  /** The build's intent (`architect_intent`). */
  intent: string;
  /** The workspace's files (`repositoryMap`); no files for an empty repository. */
  repository: RepositoryMap;
  /** What the planned phases may spend; shown to the planner and checked by `validatePlan`. */
  budgets: PlanBudgets;
  /**
   * The rest of the validation context (ruleset, safety profile, the run's CI, ids the run
   * uses, requireCi). Defaults: the claimed run's CI, and the routing's highest price
   * (`highestPricePerMTok`) as `worstCaseUsdPerMTok`.
   */
  validation?: Omit<PlanValidationContext, 'budgets'>;
}

/**
 * What the planning stage produced: a valid plan with the SPEC rendered from it, or a failed
 * attempt whose feedback names every problem (a malformed reply, schema errors, or every rule
 * `validatePlan` found broken).
 */
export type PlanResult =
  | { kind: 'planned'; plan: SubmitPlanArgs; specMarkdown: string; usage: UsageReport }
  | { kind: 'plan_failed'; reason: string; feedback: string; usage: UsageReport };

const cut = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 4)}\n...` : s);

/**
 * The planning stage: prompt, model, forced `submit_plan` call, schema, rules, SPEC. Writes
 * nothing: committing `SPEC.md` and reporting the plan are the caller's. The plan is checked
 * here with the same pure `validatePlan` the supervisor applies before queueing any phase, so
 * a plan that would be refused costs no report round trip and its feedback reaches the next
 * attempt whole.
 */
export async function planBuild(
  deps: { llm: MeteredLlm; routing: ModelRouting; log: Logger },
  claim: ClaimResponse,
  input: PlanningInput,
  opts: { signal: AbortSignal },
): Promise<PlanResult> {
  const { llm, routing, log } = deps;
  const route = routeOf(claim);
  const planner = modelFor(routing, 'planner', route.task, route.step) ?? routing.defaults.planner;
  const validation: PlanValidationContext = { worstCaseUsdPerMTok: highestPricePerMTok(routing), runCi: claim.run.ci, ...input.validation, budgets: input.budgets };
  const { cacheable, prompt } = plannerPrompt({
    intent: input.intent,
    repository: input.repository,
    categories: planningCategories(validation.ruleset),
    budgets: input.budgets,
    runCi: validation.runCi,
    previousAttempts: claim.previous_attempts,
  });

  log.info({ provider: planner.provider, model: planner.model, escalation_step: route.step }, 'calling the planner');
  const { result: reply, reservationId } = await llm.call('planner', planner, {
    system: PLANNER_SYSTEM_PROMPT,
    cacheablePrefix: cacheable,
    prompt,
    tool: PLANNER_TOOL,
    maxTokens: routing.plannerMaxTokens,
    temperature: 0.2,
    signal: opts.signal,
  });
  const usage = llm.attemptUsage(reply, claim, 'planner', reservationId);
  const failed = (reason: string, feedback: string): PlanResult => ({
    kind: 'plan_failed',
    reason: cut(reason, LIMITS.failureReasonChars),
    feedback: cut(feedback, LIMITS.feedbackChars),
    usage,
  });

  if (reply.toolInput === undefined) {
    const why = reply.malformedReason ?? 'no tool call';
    return failed(`malformed reply: ${why}`, `Your previous reply was rejected: ${why}. Reply only by calling ${TOOL_NAMES.planner} with arguments that match its schema.`);
  }
  const parsed = SubmitPlanArgsSchema.safeParse(reply.toolInput);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(arguments)'}: ${i.message}`);
    return failed(
      `malformed reply: arguments fail the ${TOOL_NAMES.planner} schema`,
      `Your previous ${TOOL_NAMES.planner} call had invalid arguments:\n${issues.map((i) => `- ${i}`).join('\n')}`,
    );
  }
  const checked = validatePlan(parsed.data, validation);
  if (!checked.ok) {
    return failed(`invalid plan: ${checked.problems.length} problem(s): ${checked.problems.join('; ')}`, planProblemsFeedback(checked.problems));
  }
  return { kind: 'planned', plan: checked.plan, specMarkdown: renderSpecMarkdown(input.intent, checked.plan), usage };
}
