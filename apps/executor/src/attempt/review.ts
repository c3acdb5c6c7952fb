import { type ClaimResponse, type SubmitReviewArgs, SubmitReviewArgsSchema, TOOL_NAMES, type ToolIssue, type UsageReport, toolInputJsonSchema } from '@app/contracts';
import { type QualityGateResult, qualityGate } from '@app/domain';
import type { Logger } from 'pino';
import { type ModelChoice, type ModelRouting, type RoutedRole, modelFor } from '../models.js';
import { AUDITOR_SYSTEM_PROMPT, type CiReport, auditorPrompt } from '../prompts.js';
import type { MeteredLlm } from './metered-llm.js';
import { routeOf } from './route.js';
import type { CiOutcome } from './verify.js';

const AUDITOR_TOOL = {
  name: TOOL_NAMES.auditor,
  description: 'Submit your review of the change.',
  inputSchema: toolInputJsonSchema(SubmitReviewArgsSchema),
};

/** The auditors' joint review of a change. */
export interface Review {
  approved: boolean;
  summary: string;
  issues: ToolIssue[];
  usage: UsageReport;
  confidence: 'low' | 'medium' | 'high';
}

/** What review produced: the quality gate blocked the change, or let it through at a level. */
export type ReviewResult =
  | { kind: 'blocked'; review: Review; gate: QualityGateResult & { level: 'blocked' } }
  | { kind: 'approved'; review: Review; gate: QualityGateResult & { level: 'ok' | 'needs_review' } };

/** Stage 4: auditors and gate. */
export async function review(
  deps: { llm: MeteredLlm; routing: ModelRouting; dualAuditor: boolean; log: Logger },
  claim: ClaimResponse,
  change: { diff: string; summary: string; ci: CiOutcome | null; signal: AbortSignal },
): Promise<ReviewResult> {
  const { ci } = change;
  const ciReport: CiReport | null = ci ? { command: ci.command, passed: ci.verdict.accepted, baselineFailed: ci.verdict.baselineFailed, tail: ci.result.outputTail } : null;
  const joint = await audit(deps, claim, change.diff, ciReport, change.summary, change.signal);
  const gate = qualityGate({
    highRisk: claim.strategy.high_risk,
    ciProfile: claim.strategy.ci_profile,
    ciAccepted: ci ? ci.verdict.accepted : null,
    majorIssues: joint.issues.filter((i) => i.severity === 'major').length,
    minorIssues: joint.issues.filter((i) => i.severity === 'minor').length,
    auditorApproved: joint.approved,
  });
  return gate.level === 'blocked' ? { kind: 'blocked', review: joint, gate: { ...gate, level: 'blocked' } } : { kind: 'approved', review: joint, gate: { ...gate, level: gate.level } };
}

/**
 * One auditor, or two (one per provider) for high-risk phases unless disabled. A malformed
 * auditor reply is retried up to the strategy's auditor attempts; after that it rejects.
 */
async function audit(
  deps: { llm: MeteredLlm; routing: ModelRouting; dualAuditor: boolean; log: Logger },
  claim: ClaimResponse,
  diff: string,
  ci: CiReport | null,
  summary: string,
  signal: AbortSignal,
): Promise<Review> {
  const { llm, routing, dualAuditor, log } = deps;
  const route = routeOf(claim);
  const auditors: [RoutedRole, ModelChoice][] = [['auditor', modelFor(routing, 'auditor', route.task, route.step) ?? routing.defaults.auditor]];
  const secondary = modelFor(routing, 'secondary_auditor', route.task, route.step);
  if (claim.strategy.dual_audit && dualAuditor && secondary) auditors.push(['secondary_auditor', secondary]);
  const prompt = auditorPrompt(claim, diff, ci, summary);
  const total: UsageReport = { prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, cost_usd: 0, calls: 0 };
  const reviews: (SubmitReviewArgs & { by: string })[] = [];
  for (const [role, auditor] of auditors) {
    let review: SubmitReviewArgs | undefined;
    let lastProblem = 'no reply';
    for (let i = 0; i < Math.max(1, claim.strategy.max_auditor_attempts) && !review; i++) {
      const { result: r } = await llm.call(role, auditor, { system: AUDITOR_SYSTEM_PROMPT, prompt, tool: AUDITOR_TOOL, maxTokens: routing.auditorMaxTokens, temperature: 0.1, signal });
      const u = llm.usageOf(r);
      total.prompt_tokens += u.prompt_tokens;
      total.completion_tokens += u.completion_tokens;
      total.cached_tokens = (total.cached_tokens ?? 0) + (u.cached_tokens ?? 0);
      total.cost_usd = (total.cost_usd ?? 0) + (u.cost_usd ?? 0);
      total.calls = (total.calls ?? 0) + 1;
      const parsed = r.toolInput === undefined ? undefined : SubmitReviewArgsSchema.safeParse(r.toolInput);
      if (parsed?.success) review = parsed.data;
      else lastProblem = r.malformedReason ?? parsed?.error.issues[0]?.message ?? 'invalid review';
    }
    if (!review) {
      log.warn({ auditor: auditor.provider, problem: lastProblem }, 'auditor gave no valid review');
      review = {
        approved: false,
        summary: `auditor (${auditor.provider}) gave no valid review: ${lastProblem}`,
        confidence: 'low',
        issues: [{ issue_key: 'auditor_no_valid_review', severity: 'major', category: 'auditor_error', description: lastProblem }],
      };
    }
    reviews.push({ ...review, by: `${auditor.provider}:${auditor.model}` });
  }
  const issues = reviews.flatMap((r) => r.issues);
  return {
    approved: reviews.every((r) => r.approved) && !issues.some((i) => i.severity === 'major'),
    summary: reviews.map((r) => (reviews.length > 1 ? `[${r.by}] ${r.summary}` : r.summary)).join('\n'),
    issues,
    usage: { ...total, provider: auditors[0][1].provider, model: auditors.map(([, a]) => a.model).join('+'), report_id: `${claim.run_id}:${claim.phase_id}:${claim.attempt}:auditor` },
    confidence: reviews.some((r) => r.confidence === 'low') ? 'low' : reviews.some((r) => r.confidence === 'medium') ? 'medium' : 'high',
  };
}
