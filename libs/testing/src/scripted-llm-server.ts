import { appendFileSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  loadLlmScript,
  LlmScriptError,
  parseLlmScript,
  type LlmScript,
  type LlmScriptInput,
  type ScriptProvider,
  type ScriptReply,
} from './llm-script.js';

/** One request the scripted server received on an LLM route. API keys are never stored, only whether one was sent. */
export interface ScriptedRequestRecord {
  /** 1-based arrival order. */
  seq: number;
  /** Wire format of the route that was called. */
  provider: ScriptProvider;
  /** Request path, e.g. `/v1/chat/completions`. */
  path: string;
  /** `model` from the body, or null. */
  model: string | null;
  /** Forced tool name (`tool_choice`), or null when none was forced. */
  tool: string | null;
  /** Whether the request asked for a streamed (SSE) reply. */
  stream: boolean;
  /** Parsed JSON body (null when the body was not valid JSON). */
  body: unknown;
  /** Concatenated request text: system plus all message text. */
  text: string;
  /** Index of the script reply that answered, or null. */
  replyIndex: number | null;
  /** HTTP status of the answer. */
  status: number;
  /** ISO timestamp of arrival. */
  at: string;
  /** Whether an `Authorization` or `x-api-key` header was present (its value is never recorded). */
  hasApiKey: boolean;
}

/** A script reply that may still be used. */
export interface RemainingReply {
  /** Position in the script. */
  index: number;
  /** Forced tool name it answers. */
  tool: string;
  /** Provider restriction, if any. */
  provider?: ScriptProvider;
  /** How many more times it may be used. */
  remaining: number;
}

/** Usage the server actually sent back, summed over every successful reply it wrote. */
export interface ServedUsage {
  /** Successful replies written (a reply whose client went away during `delay_ms` is not counted). */
  replies: number;
  /** Input tokens as reported (OpenAI `prompt_tokens`; Anthropic input plus cache reads). */
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
}

/** Log callback of the scripted server. */
export type ScriptedServerLog = (message: string) => void;

/** Options of {@link startScriptedLlmServer}. */
export interface StartScriptedLlmServerOptions {
  /** The script (validated with zod; throws `LlmScriptError` when invalid). */
  script: LlmScriptInput | LlmScript;
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** When set, every request record is appended to this file as one JSON line. */
  recordFile?: string;
  /** When set, requests carrying a different key (or none) get a 401 in the provider's error shape. */
  apiKey?: string;
  /** Optional log callback, one line per request. */
  log?: ScriptedServerLog;
}

/** A running scripted LLM server. */
export interface ScriptedLlmServer {
  /** `http://host:port`. */
  readonly url: string;
  /** Base URL for `new OpenAI({ baseURL })`: `http://host:port/v1`. */
  readonly openaiBaseUrl: string;
  /** Base URL for `new Anthropic({ baseURL })`: `http://host:port` (no `/v1`). */
  readonly anthropicBaseUrl: string;
  /** The bound port. */
  readonly port: number;
  /** Every request received on an LLM route, in arrival order. */
  readonly requests: readonly ScriptedRequestRecord[];
  /** Records whose forced tool is `tool`. */
  requestsFor(tool: string): ScriptedRequestRecord[];
  /** Replies not used up yet. */
  remainingReplies(): RemainingReply[];
  /**
   * The usage of every successful reply actually written (error replies and replies whose
   * client disconnected during their delay carry none), since the server started.
   */
  servedUsage(): ServedUsage;
  /** Replaces the script and resets the usage counters (recorded requests are kept). */
  setScript(script: LlmScriptInput | LlmScript): void;
  /**
   * Adds `ms` to the delay of every reply answered from now on (0 stops it), keeping the script
   * and every counter: lets a test slow the work down, e.g. so it outlasts a fault schedule.
   */
  setExtraDelay(ms: number): void;
  /**
   * While held, every reply waits (after its delay) until `holdReplies(false)`, keeping the
   * script and every counter: lets a test stop the work outright until a fault schedule catches
   * up with it. Closing the server drops the waiting replies.
   */
  holdReplies(held: boolean): void;
  /** Stops the server, dropping open connections. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Token estimate used when a reply has no scripted usage: ceil(chars / 4). */
function estimate(chars: number): number {
  return Math.ceil(chars / 4);
}

function randomId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Concatenates the text of OpenAI chat messages (string or text parts). */
function openaiRequestText(body: Record<string, unknown>): string {
  const parts: string[] = [];
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages) {
    if (!isRecord(m)) continue;
    const c = m.content;
    if (typeof c === 'string') parts.push(c);
    else if (Array.isArray(c)) {
      for (const p of c) if (isRecord(p) && typeof p.text === 'string') parts.push(p.text);
    }
  }
  return parts.join('\n');
}

function anthropicBlocksText(content: unknown, parts: string[]): void {
  if (typeof content === 'string') {
    parts.push(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const b of content) {
    if (!isRecord(b)) continue;
    if (typeof b.text === 'string') parts.push(b.text);
    else if (b.type === 'tool_result') anthropicBlocksText(b.content, parts);
  }
}

/** Concatenates the Anthropic system prompt and message text. */
function anthropicRequestText(body: Record<string, unknown>): string {
  const parts: string[] = [];
  anthropicBlocksText(body.system, parts);
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages) if (isRecord(m)) anthropicBlocksText(m.content, parts);
  return parts.join('\n');
}

function forcedTool(provider: ScriptProvider, body: Record<string, unknown>): string | null {
  const choice = body.tool_choice;
  if (!isRecord(choice)) return null;
  if (provider === 'openai') {
    const fn = choice.function;
    return choice.type === 'function' && isRecord(fn) && typeof fn.name === 'string' ? fn.name : null;
  }
  return choice.type === 'tool' && typeof choice.name === 'string' ? choice.name : null;
}

/** Splits `s` into at least two pieces (when it has 2+ chars), each at most 64 chars. */
function splitChunks(s: string): string[] {
  if (s.length < 2) return [s];
  const size = Math.min(64, Math.ceil(s.length / 2));
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

type StopKind = 'truncated' | 'stop' | 'tool';

function stopKind(reply: ScriptReply, hasToolCall: boolean): StopKind {
  switch (reply.stop_reason) {
    case 'max_tokens':
    case 'length':
      return 'truncated';
    case 'end_turn':
    case 'stop':
      return 'stop';
    case 'tool_use':
    case 'tool_calls':
      return 'tool';
    default:
      return hasToolCall ? 'tool' : 'stop';
  }
}

const OPENAI_FINISH: Record<StopKind, string> = { truncated: 'length', stop: 'stop', tool: 'tool_calls' };
const ANTHROPIC_STOP: Record<StopKind, string> = { truncated: 'max_tokens', stop: 'end_turn', tool: 'tool_use' };

function anthropicErrorType(status: number): string {
  switch (status) {
    case 400: return 'invalid_request_error';
    case 401: return 'authentication_error';
    case 402: return 'billing_error';
    case 403: return 'permission_error';
    case 404: return 'not_found_error';
    case 408: return 'timeout_error';
    case 413: return 'request_too_large';
    case 429: return 'rate_limit_error';
    case 529: return 'overloaded_error';
    default: return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

function openaiErrorType(status: number): { type: string; code: string | null } {
  switch (status) {
    case 401: return { type: 'invalid_request_error', code: 'invalid_api_key' };
    case 403: return { type: 'invalid_request_error', code: 'unsupported_country_region_territory' };
    case 404: return { type: 'invalid_request_error', code: 'model_not_found' };
    case 429: return { type: 'requests', code: 'rate_limit_exceeded' };
    default: return status >= 500 ? { type: 'server_error', code: null } : { type: 'invalid_request_error', code: null };
  }
}

/** Error JSON in the provider's shape. */
function providerErrorBody(provider: ScriptProvider, status: number, message: string, type?: string): unknown {
  if (provider === 'openai') {
    const t = openaiErrorType(status);
    return { error: { message, type: type ?? t.type, param: null, code: t.code } };
  }
  return { type: 'error', error: { type: type ?? anthropicErrorType(status), message }, request_id: randomId('req_') };
}

interface ResolvedUsage {
  input: number;
  output: number;
  cached: number;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers });
  res.end(data);
}

function startSse(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', ...headers });
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(tooLarge ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

class ScriptedLlmServerImpl implements ScriptedLlmServer {
  private script: LlmScript;
  private used: number[] = [];
  private extraDelayMs = 0;
  /** Set while replies are held: the waiters of the held replies, released together. */
  private held: Set<() => void> | null = null;
  private readonly records: ScriptedRequestRecord[] = [];
  private readonly served: ServedUsage = { replies: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0 };
  private seq = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly server: Server;
  private readonly host: string;
  private boundPort = 0;

  constructor(private readonly opts: StartScriptedLlmServerOptions) {
    this.script = parseLlmScript(opts.script);
    this.used = this.script.replies.map(() => 0);
    this.host = opts.host ?? '127.0.0.1';
    if (opts.recordFile) mkdirSync(dirname(opts.recordFile), { recursive: true });
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: { message: `scripted server failure: ${(err as Error).message}` } });
        else res.destroy();
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, this.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    const h = this.host === '0.0.0.0' || this.host === '::' ? '127.0.0.1' : this.host.includes(':') ? `[${this.host}]` : this.host;
    return `http://${h}:${this.boundPort}`;
  }

  get openaiBaseUrl(): string {
    return `${this.url}/v1`;
  }

  get anthropicBaseUrl(): string {
    return this.url;
  }

  get requests(): readonly ScriptedRequestRecord[] {
    return this.records;
  }

  requestsFor(tool: string): ScriptedRequestRecord[] {
    return this.records.filter((r) => r.tool === tool);
  }

  remainingReplies(): RemainingReply[] {
    const out: RemainingReply[] = [];
    this.script.replies.forEach((r, index) => {
      const remaining = r.times - this.used[index];
      if (remaining > 0) out.push({ index, tool: r.tool, ...(r.provider ? { provider: r.provider } : {}), remaining });
    });
    return out;
  }

  servedUsage(): ServedUsage {
    return { ...this.served };
  }

  setScript(script: LlmScriptInput | LlmScript): void {
    this.script = parseLlmScript(script);
    this.used = this.script.replies.map(() => 0);
  }

  setExtraDelay(ms: number): void {
    this.extraDelayMs = Math.max(0, ms);
  }

  holdReplies(held: boolean): void {
    if (held) {
      this.held ??= new Set();
      return;
    }
    const waiters = this.held;
    this.held = null;
    for (const release of waiters ?? []) release();
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private log(message: string): void {
    this.opts.log?.(message);
  }

  private record(r: ScriptedRequestRecord): void {
    this.records.push(r);
    if (this.opts.recordFile) appendFileSync(this.opts.recordFile, `${JSON.stringify(r)}\n`);
    this.log(
      `${r.provider} ${r.tool ?? '(no forced tool)'}${r.stream ? ' (stream)' : ''} -> ` +
        `${r.replyIndex === null ? 'no reply' : `reply ${r.replyIndex}`} [${r.status}]`,
    );
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const method = req.method ?? 'GET';

    if (path === '/_scripted/health' && method === 'GET') {
      sendJson(res, 200, {
        ok: true,
        replies: this.script.replies.length,
        remaining: this.remainingReplies().reduce((n, r) => n + r.remaining, 0),
        requests: this.records.length,
      });
      return;
    }
    if (path === '/_scripted/requests' && method === 'GET') {
      const tool = query.get('tool');
      sendJson(res, 200, tool ? this.requestsFor(tool) : this.records);
      return;
    }
    if (path === '/_scripted/script' && method === 'POST') {
      const raw = await readBody(req);
      if (raw === 'too-large') return sendJson(res, 413, { error: { message: 'script too large' } });
      try {
        this.setScript(JSON.parse(raw.toString('utf8')));
      } catch (err) {
        const message = err instanceof LlmScriptError ? err.message : `invalid JSON: ${(err as Error).message}`;
        return sendJson(res, 400, { error: { message } });
      }
      sendJson(res, 200, { ok: true, replies: this.script.replies.length });
      return;
    }
    const provider: ScriptProvider | null =
      path === '/v1/chat/completions' ? 'openai' : path === '/v1/messages' ? 'anthropic' : null;
    if (!provider) {
      sendJson(res, 404, { error: { message: `no route ${method} ${path}`, type: 'not_found_error' } });
      return;
    }
    if (method !== 'POST') {
      sendJson(res, 405, providerErrorBody(provider, 405, `method ${method} not allowed on ${path}`), { allow: 'POST' });
      return;
    }
    await this.handleLlm(provider, path, req, res);
  }

  private presentedKey(provider: ScriptProvider, req: IncomingMessage): string | null {
    const auth = req.headers.authorization;
    const bearer = typeof auth === 'string' && /^Bearer\s+\S/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : null;
    const xKey = req.headers['x-api-key'];
    const apiKey = typeof xKey === 'string' && xKey.length > 0 ? xKey : null;
    return provider === 'anthropic' ? (apiKey ?? bearer) : (bearer ?? apiKey);
  }

  private async handleLlm(provider: ScriptProvider, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const seq = ++this.seq;
    const at = new Date().toISOString();
    const key = this.presentedKey(provider, req);
    const base = { seq, at, provider, path, hasApiKey: key !== null };
    const raw = await readBody(req);
    if (raw === 'too-large') {
      this.record({ ...base, model: null, tool: null, stream: false, body: null, text: '', replyIndex: null, status: 413 });
      sendJson(res, 413, providerErrorBody(provider, 413, 'request body too large'));
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      body = undefined;
    }
    if (!isRecord(body)) {
      this.record({ ...base, model: null, tool: null, stream: false, body: null, text: '', replyIndex: null, status: 400 });
      sendJson(res, 400, providerErrorBody(provider, 400, 'request body is not a valid JSON object'));
      return;
    }
    const model = typeof body.model === 'string' ? body.model : null;
    const tool = forcedTool(provider, body);
    const stream = body.stream === true;
    const text = provider === 'openai' ? openaiRequestText(body) : anthropicRequestText(body);
    const info = { ...base, model, tool, stream, body, text };

    if (this.opts.apiKey !== undefined && key !== this.opts.apiKey) {
      this.record({ ...info, replyIndex: null, status: 401 });
      const message = provider === 'openai' ? 'Incorrect API key provided.' : 'invalid x-api-key';
      sendJson(res, 401, providerErrorBody(provider, 401, message));
      return;
    }

    const index = this.select(provider, tool, text);
    if (index === null) {
      this.record({ ...info, replyIndex: null, status: 400 });
      sendJson(res, 400, providerErrorBody(provider, 400, `no scripted reply for tool ${tool ?? '(none forced)'}`));
      return;
    }
    this.used[index] += 1;
    const reply = this.script.replies[index];
    const status = reply.error ? reply.error.status : 200;
    this.record({ ...info, replyIndex: index, status });

    const delayMs = (reply.delay_ms ?? 0) + this.extraDelayMs;
    if (delayMs > 0) {
      const completed = await this.delay(delayMs, res);
      if (!completed) return;
    }
    if (this.held && !(await this.whileHeld(this.held, res))) return;
    if (reply.error) {
      const errBody =
        reply.error.body !== undefined
          ? reply.error.body
          : providerErrorBody(provider, reply.error.status, reply.error.message ?? `scripted error ${reply.error.status}`, reply.error.type);
      sendJson(res, reply.error.status, errBody, reply.error.headers ?? {});
      return;
    }
    const usage = this.usageFor(reply, text);
    this.served.replies += 1;
    this.served.input_tokens += usage.input;
    this.served.output_tokens += usage.output;
    this.served.cached_tokens += usage.cached;
    const model_ = model ?? 'scripted-model';
    if (provider === 'openai') {
      if (stream) this.openaiStream(res, reply, model_, usage, isRecord(body.stream_options) && body.stream_options.include_usage === true);
      else this.openaiJson(res, reply, model_, usage);
    } else if (stream) this.anthropicStream(res, reply, model_, usage);
    else this.anthropicJson(res, reply, model_, usage);
  }

  /** Waits `ms`; resolves false when the client went away meanwhile or the server closed. */
  private delay(ms: number, res: ServerResponse): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        res.off('close', onClose);
        resolve(!res.destroyed);
      }, ms);
      const onClose = (): void => {
        clearTimeout(timer);
        this.timers.delete(timer);
        resolve(false);
      };
      this.timers.add(timer);
      res.once('close', onClose);
    });
  }

  /** Waits until the replies are released; false when the request's connection closed first. */
  private whileHeld(waiters: Set<() => void>, res: ServerResponse): Promise<boolean> {
    return new Promise((resolve) => {
      const release = (): void => {
        res.off('close', onClose);
        resolve(!res.destroyed);
      };
      const onClose = (): void => {
        waiters.delete(release);
        resolve(false);
      };
      waiters.add(release);
      res.once('close', onClose);
    });
  }

  private select(provider: ScriptProvider, tool: string | null, text: string): number | null {
    if (tool === null) return null;
    const replies = this.script.replies;
    for (let i = 0; i < replies.length; i++) {
      const r = replies[i];
      if (this.used[i] >= r.times) continue;
      if (r.tool !== tool) continue;
      if (r.provider && r.provider !== provider) continue;
      if (r.match !== undefined) {
        const needles = Array.isArray(r.match) ? r.match : [r.match];
        if (!needles.every((n) => text.includes(n))) continue;
      }
      return i;
    }
    return null;
  }

  private replyPayload(reply: ScriptReply): { kind: 'tool'; args: string; input: unknown } | { kind: 'text'; text: string } {
    if (reply.text !== undefined) return { kind: 'text', text: reply.text };
    if (reply.raw_arguments !== undefined) return { kind: 'tool', args: reply.raw_arguments, input: reply.raw_arguments };
    return { kind: 'tool', args: JSON.stringify(reply.arguments ?? {}), input: reply.arguments ?? {} };
  }

  private usageFor(reply: ScriptReply, requestText: string): ResolvedUsage {
    if (reply.usage) {
      return { input: reply.usage.input_tokens, output: reply.usage.output_tokens, cached: reply.usage.cached_tokens };
    }
    const p = this.replyPayload(reply);
    return { input: estimate(requestText.length), output: estimate(p.kind === 'text' ? p.text.length : p.args.length), cached: 0 };
  }

  private openaiUsage(u: ResolvedUsage): Record<string, unknown> {
    return {
      prompt_tokens: u.input,
      completion_tokens: u.output,
      total_tokens: u.input + u.output,
      prompt_tokens_details: { cached_tokens: u.cached, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
  }

  private openaiJson(res: ServerResponse, reply: ScriptReply, model: string, usage: ResolvedUsage): void {
    const p = this.replyPayload(reply);
    const message: Record<string, unknown> = { role: 'assistant', content: null, refusal: null, annotations: [] };
    if (p.kind === 'text') message.content = p.text;
    else message.tool_calls = [{ id: randomId('call_'), type: 'function', function: { name: reply.tool, arguments: p.args } }];
    sendJson(
      res,
      200,
      {
        id: randomId('chatcmpl-'),
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: OPENAI_FINISH[stopKind(reply, p.kind === 'tool')] }],
        usage: this.openaiUsage(usage),
        service_tier: 'default',
        system_fingerprint: null,
      },
      { 'x-request-id': randomId('req_') },
    );
  }

  private openaiStream(res: ServerResponse, reply: ScriptReply, model: string, usage: ResolvedUsage, includeUsage: boolean): void {
    const p = this.replyPayload(reply);
    const id = randomId('chatcmpl-');
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: Record<string, unknown>, finish: string | null): string =>
      `data: ${JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        system_fingerprint: null,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        ...(includeUsage ? { usage: null } : {}),
      })}\n\n`;
    startSse(res, { 'x-request-id': randomId('req_') });
    if (p.kind === 'text') {
      res.write(chunk({ role: 'assistant', content: '', refusal: null }, null));
      for (const piece of splitChunks(p.text)) res.write(chunk({ content: piece }, null));
    } else {
      res.write(
        chunk(
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ index: 0, id: randomId('call_'), type: 'function', function: { name: reply.tool, arguments: '' } }],
          },
          null,
        ),
      );
      for (const piece of splitChunks(p.args)) res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }, null));
    }
    res.write(chunk({}, OPENAI_FINISH[stopKind(reply, p.kind === 'tool')]));
    if (includeUsage) {
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices: [], usage: this.openaiUsage(usage) })}\n\n`,
      );
    }
    res.end('data: [DONE]\n\n');
  }

  private anthropicUsage(u: ResolvedUsage): Record<string, unknown> {
    return {
      input_tokens: Math.max(0, u.input - u.cached),
      output_tokens: u.output,
      cache_read_input_tokens: u.cached,
      cache_creation_input_tokens: 0,
    };
  }

  private anthropicJson(res: ServerResponse, reply: ScriptReply, model: string, usage: ResolvedUsage): void {
    const p = this.replyPayload(reply);
    const content =
      p.kind === 'text'
        ? [{ type: 'text', text: p.text }]
        : [{ type: 'tool_use', id: randomId('toolu_'), name: reply.tool, input: p.input }];
    sendJson(
      res,
      200,
      {
        id: randomId('msg_'),
        type: 'message',
        role: 'assistant',
        model,
        content,
        stop_reason: ANTHROPIC_STOP[stopKind(reply, p.kind === 'tool')],
        stop_sequence: null,
        usage: this.anthropicUsage(usage),
      },
      { 'request-id': randomId('req_') },
    );
  }

  private anthropicStream(res: ServerResponse, reply: ScriptReply, model: string, usage: ResolvedUsage): void {
    const p = this.replyPayload(reply);
    const event = (type: string, data: Record<string, unknown>): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    startSse(res, { 'request-id': randomId('req_') });
    res.write(
      event('message_start', {
        message: {
          id: randomId('msg_'),
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { ...this.anthropicUsage(usage), output_tokens: Math.min(1, usage.output) },
        },
      }),
    );
    res.write(event('ping', {}));
    if (p.kind === 'text') {
      res.write(event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }));
      for (const piece of splitChunks(p.text)) {
        res.write(event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } }));
      }
    } else {
      res.write(
        event('content_block_start', { index: 0, content_block: { type: 'tool_use', id: randomId('toolu_'), name: reply.tool, input: {} } }),
      );
      for (const piece of splitChunks(p.args)) {
        res.write(event('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: piece } }));
      }
    }
    res.write(event('content_block_stop', { index: 0 }));
    res.write(
      event('message_delta', {
        delta: { stop_reason: ANTHROPIC_STOP[stopKind(reply, p.kind === 'tool')], stop_sequence: null },
        usage: { output_tokens: usage.output },
      }),
    );
    res.end(event('message_stop', {}));
  }
}

/**
 * Starts a local HTTP server speaking the OpenAI chat-completions and Anthropic messages wire
 * formats, answering forced tool calls from `script` and recording every request.
 */
export async function startScriptedLlmServer(opts: StartScriptedLlmServerOptions): Promise<ScriptedLlmServer> {
  const server = new ScriptedLlmServerImpl(opts);
  await server.listen();
  return server;
}

/** Options of {@link serveScriptFromFile}. */
export interface ServeScriptFromFileOptions {
  /** Path of a JSON or YAML script. */
  scriptPath: string;
  /** TCP port; 0 or omitted picks a free one. */
  port?: number;
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** When set, request records are appended to this file as JSON lines. */
  recordFile?: string;
  /** Log callback (startup line plus one line per request). */
  log?: ScriptedServerLog;
}

/** Loads a script file and serves it; for the `autopack llm-server --script f --port p` command. */
export async function serveScriptFromFile(opts: ServeScriptFromFileOptions): Promise<ScriptedLlmServer> {
  const script = await loadLlmScript(opts.scriptPath);
  const server = await startScriptedLlmServer({
    script,
    port: opts.port,
    host: opts.host,
    recordFile: opts.recordFile,
    log: opts.log,
  });
  opts.log?.(
    `scripted LLM server on ${server.url} (${script.replies.length} replies from ${opts.scriptPath}); ` +
      `OpenAI base URL ${server.openaiBaseUrl}, Anthropic base URL ${server.anthropicBaseUrl}`,
  );
  return server;
}
