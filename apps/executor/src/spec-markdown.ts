import { type PhaseCreate, type SubmitPlanArgs, SubmitPlanArgsSchema } from '@app/contracts';

/** Where the SPEC is committed, at the repository root (CONTRACT.md section 8, step 1). */
export const SPEC_PATH = 'SPEC.md';

/** Inline code that survives backticks inside it (CommonMark: a longer fence, padded). */
export function inlineCode(s: string): string {
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  return longest ? `${fence} ${s} ${fence}` : `${fence}${s}${fence}`;
}

/** A fenced block whose fence is longer than any backtick run in the text. */
function fenced(info: string, text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${info}\n${text}\n${fence}`;
}

function byIndex<T>(items: readonly T[], index: (t: T) => number): T[] {
  // Stable: equal indexes keep the plan's order.
  return items.map((item, order) => ({ item, order })).sort((a, b) => index(a.item) - index(b.item) || a.order - b.order).map((e) => e.item);
}

function phaseSection(p: PhaseCreate): string {
  const lines = [`#### Phase ${inlineCode(p.phase_id)}: ${p.name}`, ''];
  if (p.description?.trim()) lines.push(p.description.trim(), '');
  lines.push(`- Task category: ${p.task_category ?? 'generic'}${p.complexity ? ` (complexity ${p.complexity})` : ''}`);
  if (p.scope?.paths?.length) lines.push(`- May change: ${p.scope.paths.map(inlineCode).join(', ')}`);
  if (p.scope?.read_only_context?.length) lines.push(`- Reads: ${p.scope.read_only_context.map(inlineCode).join(', ')}`);
  if (p.ci) lines.push(`- Verified by: ${inlineCode(p.ci.command)}${p.ci.timeout_s ? ` (timeout ${p.ci.timeout_s} s)` : ''}`);
  if (p.acceptance_criteria?.length) {
    lines.push('- Acceptance criteria:');
    for (const c of p.acceptance_criteria) lines.push(`  - ${c.replace(/\s*\n\s*/g, ' ')}`);
  }
  return lines.join('\n');
}

/**
 * The SPEC of a build, as committed to `SPEC.md`: the intent, the plan in tier and phase
 * order for people, and the plan itself as JSON for programs (a resumed build, or the
 * coordinator, can read it back). Deterministic: the same intent and plan give the same bytes,
 * so a retried planning step commits nothing new.
 */
export function renderSpecMarkdown(intent: string, plan: SubmitPlanArgs): string {
  const out: string[] = ['# SPEC', '', '## Intent', '', intent.trim(), '', '## Plan', ''];
  const tiers = byIndex(plan.tiers, (t) => t.tier_index);
  for (const t of tiers) {
    out.push(`### Tier ${t.tier_index}: ${t.name} (${inlineCode(t.tier_id)})`, '');
    if (t.description?.trim()) out.push(t.description.trim(), '');
    const phases = byIndex(
      plan.phases.filter((p) => p.tier_id === t.tier_id),
      (p) => p.phase_index,
    );
    for (const p of phases) out.push(phaseSection(p), '');
  }
  out.push('## Plan as data', '', fenced('json', JSON.stringify(plan, null, 2)), '');
  return out.join('\n');
}

/** What {@link parseSpecPlan} read: the plan of a SPEC, or why it holds none. */
export type ParsedSpecPlan = { ok: true; plan: SubmitPlanArgs } | { ok: false; problem: string };

/**
 * The plan a SPEC carries, read back from its `## Plan as data` JSON block (the last section,
 * fenced by a run of backticks longer than any inside it, so the closing fence is the
 * document's last one) and checked with `SubmitPlanArgsSchema`. For a build whose planning
 * step committed `SPEC.md` but whose report was lost: the next attempt reports this plan
 * instead of planning (and committing) again.
 */
export function parseSpecPlan(markdown: string): ParsedSpecPlan {
  const text = markdown.replace(/\r\n/g, '\n');
  // The last such heading is the section: JSON has no raw line breaks, so none hides inside the block.
  const at = text.lastIndexOf('\n## Plan as data\n\n');
  const block = at < 0 ? null : /^\n## Plan as data\n\n(`{3,})json\n([\s\S]*)\n\1\n*$/.exec(text.slice(at));
  if (!block) return { ok: false, problem: 'no "## Plan as data" JSON block at the end of the SPEC' };
  let data: unknown;
  try {
    data = JSON.parse(block[2]);
  } catch (err) {
    return { ok: false, problem: `the plan block is not JSON: ${(err as Error).message}` };
  }
  const parsed = SubmitPlanArgsSchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.') || '(plan)'}: ${i.message}`);
    return { ok: false, problem: `the plan block does not match the plan schema: ${issues.join('; ')}` };
  }
  return { ok: true, plan: parsed.data };
}
