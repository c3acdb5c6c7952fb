import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';
import { LlmError, isSdkError, toLlmError } from './errors.js';
import { estimateTokens } from './pricing.js';
import {
  MALFORMED_REASONS,
  type ForcedToolCallRequest,
  type ForcedToolCallResult,
  type LlmUsage,
  type Provider,
} from './types.js';

/** Options of {@link LlmClient}. A provider is available only when its API key is given. */
export interface LlmClientOptions {
  /** OpenAI API key; without it OpenAI calls fail with `NO_PROVIDER`. */
  openaiApiKey?: string;
  /** Anthropic API key; without it Anthropic calls fail with `NO_PROVIDER`. */
  anthropicApiKey?: string;
  /** OpenAI base URL including `/v1`; default: the SDK's (`OPENAI_BASE_URL` or api.openai.com). */
  openaiBaseUrl?: string;
  /** Anthropic base URL without `/v1`; default: the SDK's (`ANTHROPIC_BASE_URL` or api.anthropic.com). */
  anthropicBaseUrl?: string;
  /** Retries the SDKs make on 408/409/429/5xx/connection errors, honouring retry-after. Default 3. */
  maxRetries?: number;
  /** Per-attempt timeout in milliseconds; default: the SDKs' (10 minutes). */
  timeoutMs?: number;
}

/**
 * Largest `max_tokens` the Anthropic SDK accepts without streaming (it refuses requests whose
 * expected duration, 60 min x maxTokens / 128k, exceeds 10 minutes).
 */
export const ANTHROPIC_MAX_NONSTREAMING_TOKENS = Math.floor((128_000 * 10) / 60);

const DEFAULT_MAX_RETRIES = 3;

/**
 * `fetch` for the OpenAI SDK that rethrows errors from another JS realm (e.g. undici's abort
 * `DOMException` under Jest's VM modules) as same-realm `Error`s keeping `name`, `message` and
 * `cause`. The OpenAI SDK only recognises a timeout when `instanceof Error` holds; the Anthropic
 * SDK already does this itself.
 */
const realmSafeFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  try {
    return await fetch(input, init);
  } catch (err) {
    if (err instanceof Error || typeof err !== 'object' || err === null) throw err;
    const e = err as { name?: unknown; message?: unknown; cause?: unknown };
    const copy = new Error(typeof e.message === 'string' ? e.message : 'fetch failed', e.cause !== undefined ? { cause: e.cause } : {});
    if (typeof e.name === 'string') copy.name = e.name;
    throw copy;
  }
};

/** `make()`'s promise, made on the first call; a failed import is tried again on the next. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= make().catch((err: unknown) => {
      made = undefined;
      throw err;
    });
    return made;
  };
}

/** Outcome of parsing tool arguments: the input, or undefined with the reason. */
export interface ParsedToolArguments {
  /** The parsed input object, or undefined when malformed. */
  toolInput: unknown | undefined;
  /** Why `toolInput` is undefined. */
  malformedReason?: string;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a tool-arguments JSON string strictly; never throws. */
export function parseToolArguments(json: string): ParsedToolArguments {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { toolInput: undefined, malformedReason: MALFORMED_REASONS.invalidJson };
  }
  if (!isPlainObject(value)) return { toolInput: undefined, malformedReason: MALFORMED_REASONS.notAnObject };
  return { toolInput: value };
}

function noCallReason(otherTools: string[], expected: string): string {
  return otherTools.length === 0
    ? MALFORMED_REASONS.noToolCall
    : `${MALFORMED_REASONS.noToolCall} of ${expected} (called ${otherTools.join(', ')})`;
}

/** Applies the truncation rule: a tool call cut off by the token limit is incomplete, whatever it parses to. */
function finish(parsed: ParsedToolArguments, hasCall: boolean, truncated: boolean): ParsedToolArguments {
  if (truncated && hasCall && parsed.toolInput !== undefined) {
    return { toolInput: undefined, malformedReason: MALFORMED_REASONS.truncated };
  }
  return parsed;
}

/**
 * The Anthropic user message: the prompt alone, or the cacheable prefix as a text block marked
 * as a cache breakpoint (tools, system and the prefix are then cached together) and the prompt.
 */
function anthropicUserContent(req: ForcedToolCallRequest): string | Anthropic.TextBlockParam[] {
  if (!req.cacheablePrefix) return req.prompt;
  return [
    { type: 'text', text: req.cacheablePrefix, cache_control: { type: 'ephemeral' } },
    { type: 'text', text: req.prompt },
  ];
}

/**
 * Calls OpenAI or Anthropic through their official SDKs, forcing one tool call, and returns
 * the tool input, text, usage and stop reason. Transient failures are retried by the SDKs
 * (`maxRetries`); what still fails is thrown as an {@link LlmError} with a scrubbed message.
 */
export class LlmClient {
  /**
   * Each configured provider's client, built on its first call: importing an SDK takes 0.1-0.3 s
   * and 10-20 MiB, and many executors only ever use one provider (or make no call at all).
   */
  private readonly openai?: () => Promise<OpenAI>;
  private readonly anthropic?: () => Promise<Anthropic>;
  private readonly secrets: string[];

  /** @param opts API keys, base URLs, retries and timeout */
  constructor(opts: LlmClientOptions = {}) {
    const maxRetries = opts.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.secrets = [opts.openaiApiKey, opts.anthropicApiKey].filter((k): k is string => !!k);
    // The SDKs read their base URL variables when a client is built; they are read now, as then.
    const openaiBaseUrl = opts.openaiBaseUrl || process.env.OPENAI_BASE_URL?.trim() || undefined;
    const anthropicBaseUrl = opts.anthropicBaseUrl || process.env.ANTHROPIC_BASE_URL?.trim() || undefined;
    const { openaiApiKey, anthropicApiKey } = opts;
    if (openaiApiKey) {
      this.openai = once(async () => {
        const { default: OpenAISdk } = await import('openai');
        return new OpenAISdk({
          apiKey: openaiApiKey,
          ...(openaiBaseUrl ? { baseURL: openaiBaseUrl } : {}),
          ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
          maxRetries,
          fetch: realmSafeFetch,
        });
      });
    }
    if (anthropicApiKey) {
      this.anthropic = once(async () => {
        const { default: AnthropicSdk } = await import('@anthropic-ai/sdk');
        return new AnthropicSdk({
          apiKey: anthropicApiKey,
          ...(anthropicBaseUrl ? { baseURL: anthropicBaseUrl } : {}),
          ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
          maxRetries,
        });
      });
    }
  }

  /** Whether an API key was configured for `provider`. */
  hasProvider(provider: Provider): boolean {
    return provider === 'openai' ? this.openai !== undefined : provider === 'anthropic' ? this.anthropic !== undefined : false;
  }

  /**
   * Makes one forced tool call. A reply without the forced tool call, or with unparseable
   * arguments, is returned (not thrown) with `toolInput: undefined` and a `malformedReason`.
   * @throws LlmError when the provider is not configured or the call fails after retries
   */
  async callTool(req: ForcedToolCallRequest): Promise<ForcedToolCallResult> {
    const provider = req.provider;
    try {
      let result: Omit<ForcedToolCallResult, 'durationMs'>;
      // The call's duration is the provider's: a first call's SDK import is not part of it.
      let started = performance.now();
      if (provider === 'openai' && this.openai) {
        const client = await this.openai();
        started = performance.now();
        result = await this.callOpenAI(client, req);
      } else if (provider === 'anthropic' && this.anthropic) {
        const client = await this.anthropic();
        started = performance.now();
        result = await this.callAnthropic(client, req);
      } else {
        throw new LlmError('NO_PROVIDER', `no API key configured for provider ${String(provider)}`, {
          provider,
          retryable: false,
        });
      }
      if (req.signal?.aborted) throw new LlmError('ABORTED', `${provider} ABORTED: call was aborted`, { provider });
      return { ...result, durationMs: Math.round(performance.now() - started) };
    } catch (err) {
      throw toLlmError(err, provider, this.secrets);
    }
  }

  private async callOpenAI(client: OpenAI, req: ForcedToolCallRequest): Promise<Omit<ForcedToolCallResult, 'durationMs'>> {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [];
    if (req.system) messages.push({ role: 'system', content: req.system });
    messages.push({ role: 'user', content: req.cacheablePrefix ? `${req.cacheablePrefix}\n\n${req.prompt}` : req.prompt });
    const params = {
      model: req.model,
      messages,
      tools: [
        {
          type: 'function' as const,
          function: { name: req.tool.name, description: req.tool.description, parameters: req.tool.inputSchema },
        },
      ],
      tool_choice: { type: 'function' as const, function: { name: req.tool.name } },
      max_completion_tokens: req.maxTokens,
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    };
    const options = req.signal ? { signal: req.signal } : undefined;

    let text = '';
    let stopReason = 'unknown';
    let usage: OpenAI.CompletionUsage | null | undefined;
    const calls: { name: string; args: string }[] = [];

    if (req.stream) {
      const stream = await client.chat.completions.create(
        { ...params, stream: true, stream_options: { include_usage: true } },
        options,
      );
      const byIndex = new Map<number, { name: string; args: string }>();
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices[0];
        if (!choice) continue;
        if (choice.delta?.content) text += choice.delta.content;
        for (const tc of choice.delta?.tool_calls ?? []) {
          const acc = byIndex.get(tc.index) ?? { name: '', args: '' };
          if (tc.function?.name) acc.name += tc.function.name;
          if (tc.function?.arguments) acc.args += tc.function.arguments;
          byIndex.set(tc.index, acc);
        }
        if (choice.finish_reason) stopReason = choice.finish_reason;
      }
      calls.push(...[...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c));
    } else {
      const completion = await client.chat.completions.create(params, options);
      const choice = completion.choices[0];
      usage = completion.usage;
      text = choice?.message.content ?? '';
      stopReason = choice?.finish_reason ?? 'unknown';
      for (const tc of choice?.message.tool_calls ?? []) {
        if (tc.type === 'function') calls.push({ name: tc.function.name, args: tc.function.arguments });
      }
    }

    const truncated = stopReason === 'length';
    const call = calls.find((c) => c.name === req.tool.name);
    const parsed = call
      ? parseToolArguments(call.args)
      : { toolInput: undefined, malformedReason: noCallReason(calls.map((c) => c.name), req.tool.name) };
    return {
      provider: 'openai',
      model: req.model,
      ...finish(parsed, call !== undefined, truncated),
      text,
      usage: {
        promptTokens: usage?.prompt_tokens ?? 0,
        completionTokens: usage?.completion_tokens ?? 0,
        cachedTokens: usage?.prompt_tokens_details?.cached_tokens ?? 0,
      },
      stopReason,
      truncated,
    };
  }

  private async callAnthropic(client: Anthropic, req: ForcedToolCallRequest): Promise<Omit<ForcedToolCallResult, 'durationMs'>> {
    const params: Anthropic.MessageCreateParamsNonStreaming = {
      model: req.model,
      max_tokens: req.maxTokens,
      ...(req.system ? { system: [{ type: 'text', text: req.system, cache_control: { type: 'ephemeral' } }] } : {}),
      messages: [{ role: 'user', content: anthropicUserContent(req) }],
      tools: [
        {
          name: req.tool.name,
          description: req.tool.description,
          input_schema: req.tool.inputSchema as Anthropic.Tool.InputSchema,
        },
      ],
      tool_choice: { type: 'tool', name: req.tool.name },
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    };
    const options = req.signal ? { signal: req.signal } : undefined;
    const stream = req.stream ?? req.maxTokens > ANTHROPIC_MAX_NONSTREAMING_TOKENS;
    return stream ? this.anthropicStreamed(client, params, options, req) : this.anthropicPlain(client, params, options, req);
  }

  private async anthropicPlain(
    client: Anthropic,
    params: Anthropic.MessageCreateParamsNonStreaming,
    options: { signal: AbortSignal } | undefined,
    req: ForcedToolCallRequest,
  ): Promise<Omit<ForcedToolCallResult, 'durationMs'>> {
    const message = await client.messages.create(params, options);
    const toolBlocks = message.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
    const block = toolBlocks.find((b) => b.name === req.tool.name);
    let parsed: ParsedToolArguments;
    if (!block) parsed = { toolInput: undefined, malformedReason: noCallReason(toolBlocks.map((b) => b.name), req.tool.name) };
    else if (isPlainObject(block.input)) parsed = { toolInput: block.input };
    else if (typeof block.input === 'string') {
      // A string input is a protocol deviation: unparseable -> invalid JSON, otherwise not an object.
      const p = parseToolArguments(block.input);
      parsed = p.toolInput === undefined ? p : { toolInput: undefined, malformedReason: MALFORMED_REASONS.notAnObject };
    } else parsed = { toolInput: undefined, malformedReason: MALFORMED_REASONS.notAnObject };
    return this.anthropicResult(req, message, parsed, block !== undefined);
  }

  private async anthropicStreamed(
    client: Anthropic,
    params: Anthropic.MessageCreateParamsNonStreaming,
    options: { signal: AbortSignal } | undefined,
    req: ForcedToolCallRequest,
  ): Promise<Omit<ForcedToolCallResult, 'durationMs'>> {
    const stream = client.messages.stream(params, options);
    // The raw tool JSON per content block. The SDK's snapshot parses it leniently (partial JSON),
    // which would turn a truncated call into a plausible-looking object; we parse it strictly.
    const rawJson = new Map<number, { name: string; json: string }>();
    const texts: string[] = [];
    let startUsage: Anthropic.Usage | undefined;
    let outputTokens: number | undefined;
    let stopReason: string | null = null;
    stream.on('streamEvent', (event) => {
      switch (event.type) {
        case 'message_start':
          startUsage = event.message.usage;
          break;
        case 'content_block_start':
          if (event.content_block.type === 'tool_use') rawJson.set(event.index, { name: event.content_block.name, json: '' });
          break;
        case 'content_block_delta':
          if (event.delta.type === 'input_json_delta') {
            const acc = rawJson.get(event.index);
            if (acc) acc.json += event.delta.partial_json;
          } else if (event.delta.type === 'text_delta') texts.push(event.delta.text);
          break;
        case 'message_delta':
          stopReason = event.delta.stop_reason ?? stopReason;
          outputTokens = event.usage.output_tokens;
          break;
        default:
          break;
      }
    });

    let message: Anthropic.Message | undefined;
    try {
      message = await stream.finalMessage();
    } catch (err) {
      // The SDK's stream accumulator throws a plain AnthropicError when a tool block's JSON is
      // not even partially parseable. That is a malformed reply, not a failed call.
      const invalidBlock = [...rawJson.values()].find((b) => b.name === req.tool.name && parseToolArguments(b.json).toolInput === undefined);
      if (isSdkError(err, 'APIError') || !invalidBlock || req.signal?.aborted) throw err;
      const json = invalidBlock.json;
      const usage = this.anthropicUsage(startUsage, Math.max(outputTokens ?? 0, estimateTokens(json)));
      return {
        provider: 'anthropic',
        model: req.model,
        toolInput: undefined,
        malformedReason: MALFORMED_REASONS.invalidJson,
        text: texts.join(''),
        usage,
        stopReason: stopReason ?? 'unknown',
        truncated: stopReason === 'max_tokens' || stopReason === 'model_context_window_exceeded',
      };
    }

    const toolBlocks = message.content
      .map((b, index) => ({ b, index }))
      .filter((x): x is { b: Anthropic.ToolUseBlock; index: number } => x.b.type === 'tool_use');
    const hit = toolBlocks.find((x) => x.b.name === req.tool.name);
    let parsed: ParsedToolArguments;
    if (!hit) parsed = { toolInput: undefined, malformedReason: noCallReason(toolBlocks.map((x) => x.b.name), req.tool.name) };
    else {
      const raw = rawJson.get(hit.index)?.json ?? '';
      // No input_json_delta at all means the model sent the (empty) input from content_block_start.
      if (raw !== '') parsed = parseToolArguments(raw);
      else if (isPlainObject(hit.b.input)) parsed = { toolInput: hit.b.input };
      else parsed = { toolInput: undefined, malformedReason: MALFORMED_REASONS.notAnObject };
    }
    return this.anthropicResult(req, message, parsed, hit !== undefined);
  }

  private anthropicUsage(u: Anthropic.Usage | undefined, outputTokens?: number): LlmUsage {
    const cacheRead = u?.cache_read_input_tokens ?? 0;
    const cacheWrite = u?.cache_creation_input_tokens ?? 0;
    return {
      promptTokens: (u?.input_tokens ?? 0) + cacheRead + cacheWrite,
      completionTokens: outputTokens ?? u?.output_tokens ?? 0,
      cachedTokens: cacheRead,
    };
  }

  private anthropicResult(
    req: ForcedToolCallRequest,
    message: Anthropic.Message,
    parsed: ParsedToolArguments,
    hasCall: boolean,
  ): Omit<ForcedToolCallResult, 'durationMs'> {
    const stopReason = message.stop_reason ?? 'unknown';
    const truncated = stopReason === 'max_tokens' || stopReason === 'model_context_window_exceeded';
    const text = message.content
      .filter((b): b is Anthropic.TextBlock => b.type === 'text')
      .map((b) => b.text)
      .join('');
    return {
      provider: 'anthropic',
      model: req.model,
      ...finish(parsed, hasCall, truncated),
      text,
      usage: this.anthropicUsage(message.usage),
      stopReason,
      truncated,
    };
  }
}
