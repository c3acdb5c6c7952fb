import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { z } from 'zod';

/** The two LLM wire formats the scripted server speaks. */
export const ScriptProviderSchema = z.enum(['openai', 'anthropic']);
/** `openai` (chat completions) or `anthropic` (messages). */
export type ScriptProvider = z.infer<typeof ScriptProviderSchema>;

const nonNegativeInt = z.number().int().min(0);

/** Token usage a scripted reply reports. `input_tokens` counts the whole prompt; `cached_tokens` is the cached part of it. */
export const ScriptUsageSchema = z.strictObject({
  input_tokens: nonNegativeInt,
  output_tokens: nonNegativeInt,
  cached_tokens: nonNegativeInt.optional().default(0),
});
/** Token usage a scripted reply reports. */
export type ScriptUsage = z.infer<typeof ScriptUsageSchema>;

/** An HTTP error reply. Without `body`, a body in the provider's error shape is built from `message` and `type`. */
export const ScriptErrorSchema = z.strictObject({
  status: z.number().int().min(400).max(599),
  headers: z.record(z.string(), z.union([z.string(), z.number()]).transform(String)).optional(),
  body: z.unknown().optional(),
  message: z.string().optional(),
  type: z.string().optional(),
});
/** An HTTP error reply. */
export type ScriptError = z.infer<typeof ScriptErrorSchema>;

/**
 * Stop reasons a reply may report. `max_tokens` and `length` both mean truncation
 * (OpenAI `finish_reason: "length"`, Anthropic `stop_reason: "max_tokens"`).
 */
export const ScriptStopReasonSchema = z.enum(['max_tokens', 'length', 'end_turn', 'stop', 'tool_use', 'tool_calls']);
/** Stop reasons a reply may report. */
export type ScriptStopReason = z.infer<typeof ScriptStopReasonSchema>;

const REPLY_KINDS = ['arguments', 'text', 'raw_arguments', 'error'] as const;

/** One scripted reply. Exactly one of `arguments`, `text`, `raw_arguments`, `error` must be given. */
export const ScriptReplySchema = z
  .strictObject({
    tool: z.string().min(1, 'tool must name the forced tool this reply answers'),
    match: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    provider: ScriptProviderSchema.optional(),
    arguments: z.record(z.string(), z.unknown()).optional(),
    text: z.string().optional(),
    raw_arguments: z.string().optional(),
    error: ScriptErrorSchema.optional(),
    usage: ScriptUsageSchema.optional(),
    stop_reason: ScriptStopReasonSchema.optional(),
    times: z.number().int().min(1).optional().default(1),
    delay_ms: z.number().int().min(0).max(600_000).optional(),
  })
  .superRefine((reply, ctx) => {
    const given = REPLY_KINDS.filter((k) => reply[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          given.length === 0
            ? `a reply needs exactly one of ${REPLY_KINDS.join(', ')}`
            : `a reply needs exactly one of ${REPLY_KINDS.join(', ')}, got ${given.join(' and ')}`,
      });
    }
  });
/** One scripted reply, after validation and defaults. */
export type ScriptReply = z.infer<typeof ScriptReplySchema>;
/** One scripted reply as written (before defaults). */
export type ScriptReplyInput = z.input<typeof ScriptReplySchema>;

/** A whole LLM script: ordered replies. */
export const LlmScriptSchema = z.strictObject({
  description: z.string().optional(),
  replies: z.array(ScriptReplySchema),
});
/** A validated LLM script. */
export type LlmScript = z.infer<typeof LlmScriptSchema>;
/** An LLM script as written (JS object, JSON or YAML). */
export type LlmScriptInput = z.input<typeof LlmScriptSchema>;

/** Thrown when a script does not validate; the message lists every problem with its path. */
export class LlmScriptError extends Error {
  /** @param message the full, human-readable description of the problems */
  constructor(message: string) {
    super(message);
    this.name = 'LlmScriptError';
  }
}

/**
 * Validates a script object and applies defaults.
 * @param input the script (e.g. parsed JSON/YAML)
 * @param source where it came from, for the error message
 * @throws LlmScriptError listing each problem as `path: message`
 */
export function parseLlmScript(input: unknown, source = 'script'): LlmScript {
  const result = LlmScriptSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const path = issue.path.length ? issue.path.map(String).join('.') : '(root)';
      return `  - ${path}: ${issue.message}`;
    });
    throw new LlmScriptError(`invalid LLM script (${source}):\n${lines.join('\n')}`);
  }
  return result.data;
}

/**
 * Reads and validates a script file. `.json` files are parsed as JSON, anything else as YAML.
 * @throws LlmScriptError when the file cannot be parsed or does not validate
 */
export async function loadLlmScript(path: string): Promise<LlmScript> {
  const raw = await readFile(path, 'utf8');
  let parsed: unknown;
  try {
    parsed = extname(path).toLowerCase() === '.json' ? JSON.parse(raw) : loadYaml(raw);
  } catch (err) {
    throw new LlmScriptError(`invalid LLM script (${path}): cannot parse: ${(err as Error).message}`);
  }
  return parseLlmScript(parsed, path);
}
