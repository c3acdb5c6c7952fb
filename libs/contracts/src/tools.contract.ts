import { z } from 'zod';
import { RunStartRequestSchema } from './runs.contract.js';
import { SeveritySchema } from './states.js';

const editPath = z.string().min(1).max(1000);

/** One Builder edit (CONTRACT.md section 4). Paths are checked again, strictly, by the executor's governed apply. */
export const BuilderEditSchema = z.discriminatedUnion('action', [
  z.strictObject({ path: editPath, action: z.literal('create'), content: z.string() }),
  z.strictObject({ path: editPath, action: z.literal('replace'), content: z.string() }),
  z.strictObject({ path: editPath, action: z.literal('edit'), search: z.string().min(1), replace: z.string() }),
  z.strictObject({ path: editPath, action: z.literal('delete') }),
  z.strictObject({ path: editPath, action: z.literal('rename'), new_path: editPath }),
]);
/** One Builder edit. */
export type BuilderEdit = z.infer<typeof BuilderEditSchema>;

/** An issue as the LLM reports it. */
export const ToolIssueSchema = z.object({
  issue_key: z.string().min(1).max(200),
  severity: SeveritySchema,
  category: z.string().min(1).max(100),
  description: z.string().max(5000).optional().default(''),
  location: z.string().max(500).optional(),
});
/** An issue as the LLM reports it. */
export type ToolIssue = z.infer<typeof ToolIssueSchema>;

/** Arguments of the Builder tool `submit_changes`. */
export const SubmitChangesArgsSchema = z.strictObject({
  summary: z.string().min(1).max(5000),
  edits: z.array(BuilderEditSchema).max(500),
  issues: z.array(ToolIssueSchema).max(100).optional().default([]),
});
/** Arguments of `submit_changes`. */
export type SubmitChangesArgs = z.infer<typeof SubmitChangesArgsSchema>;

/** Arguments of the Auditor tool `submit_review`. */
export const SubmitReviewArgsSchema = z.strictObject({
  approved: z.boolean(),
  summary: z.string().max(10_000),
  confidence: z.enum(['low', 'medium', 'high']).optional().default('medium'),
  issues: z.array(ToolIssueSchema).max(200).optional().default([]),
});
/** Arguments of `submit_review`. */
export type SubmitReviewArgs = z.infer<typeof SubmitReviewArgsSchema>;

/**
 * Arguments of the Planner tool `submit_plan` (CONTRACT.md section 4): the body of
 * `POST /runs/start` without `run`, derived from its schema so a plan the tool accepts is a
 * plan the route accepts. What the schema cannot see (ids unique, tiers exist, categories
 * known, CI where the category needs it, budgets) is `validatePlan` in libs/domain.
 */
export const SubmitPlanArgsSchema = RunStartRequestSchema.omit({ run: true });
/** Arguments of `submit_plan`: tiers and phases. */
export type SubmitPlanArgs = z.infer<typeof SubmitPlanArgsSchema>;

/** Tool names of the LLM protocol. */
export const TOOL_NAMES = { builder: 'submit_changes', auditor: 'submit_review', planner: 'submit_plan' } as const;

/**
 * JSON Schema of a tool's input, as sent to the providers. Derived from the same zod schema
 * the executor validates replies with, so the two cannot drift.
 */
export function toolInputJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}
