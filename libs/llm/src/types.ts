/** The LLM providers Autopack talks to. */
export type Provider = 'openai' | 'anthropic';

/** A tool the model is forced to call. */
export interface ToolSpec {
  /** Tool (function) name, e.g. `submit_changes`. */
  name: string;
  /** What the tool is for; sent to the model. */
  description: string;
  /** JSON Schema (an object schema) of the tool's input. */
  inputSchema: Record<string, unknown>;
}

/** One forced tool call. */
export interface ForcedToolCallRequest {
  /** Which provider to call. */
  provider: Provider;
  /** Model name, e.g. from `DEFAULT_MODELS`. */
  model: string;
  /**
   * Stable prefix (instructions). Cached: Anthropic gets it as a system text block with
   * `cache_control: {type: 'ephemeral'}`; OpenAI caches long prefixes automatically.
   */
  system: string;
  /**
   * The stable start of the user message (e.g. repository context that is the same for every
   * phase of a run), sent before `prompt`: Anthropic gets it as a text block of its own with
   * `cache_control: {type: 'ephemeral'}` (a cache breakpoint after it); OpenAI gets it in the
   * same message, `prompt` following after a blank line, so it is a shared prefix that OpenAI
   * caches automatically. Empty or absent: the user message is `prompt` alone.
   */
  cacheablePrefix?: string;
  /** The user message (after `cacheablePrefix`, when there is one). */
  prompt: string;
  /** The tool the reply must call. */
  tool: ToolSpec;
  /** Maximum output tokens. */
  maxTokens: number;
  /** Sampling temperature; omitted from the request when undefined (some models accept only their default). */
  temperature?: number;
  /** Cancels the call (the result is an `LlmError` with code `ABORTED`). */
  signal?: AbortSignal;
  /**
   * Stream the reply. Anthropic: `messages.stream(...).finalMessage()`; OpenAI: SSE with
   * `stream_options.include_usage`. When undefined, Anthropic calls stream only if `maxTokens`
   * is too large for a non-streaming request (the SDK refuses those); OpenAI calls do not stream.
   */
  stream?: boolean;
}

/** Token usage of one call. `promptTokens` counts the whole prompt, cached part included. */
export interface LlmUsage {
  /** All input tokens (uncached + cache reads + cache writes). */
  promptTokens: number;
  /** Output tokens. */
  completionTokens: number;
  /** Input tokens served from the prompt cache (a subset of `promptTokens`). */
  cachedTokens: number;
}

/** The outcome of a forced tool call that reached the provider and got a reply. */
export interface ForcedToolCallResult {
  /** Provider that answered. */
  provider: Provider;
  /** Model as requested. */
  model: string;
  /** Parsed input of the forced tool, or undefined when the reply is malformed (see `malformedReason`). */
  toolInput: unknown | undefined;
  /** Why `toolInput` is undefined, e.g. `no tool call in reply` or `tool arguments are not valid JSON`. */
  malformedReason?: string;
  /** Any text content of the reply. */
  text: string;
  /** Token usage. */
  usage: LlmUsage;
  /** Provider stop reason as reported (`tool_calls`, `length`, `tool_use`, `max_tokens`, ...). */
  stopReason: string;
  /** True when the reply was cut off by the output token limit. */
  truncated: boolean;
  /** Wall time of the call, retries included, in milliseconds. */
  durationMs: number;
}

/** Reasons reported in `ForcedToolCallResult.malformedReason`. */
export const MALFORMED_REASONS = {
  noToolCall: 'no tool call in reply',
  invalidJson: 'tool arguments are not valid JSON',
  notAnObject: 'tool arguments are not a JSON object',
  truncated: 'reply truncated at the output token limit; tool call incomplete',
} as const;
