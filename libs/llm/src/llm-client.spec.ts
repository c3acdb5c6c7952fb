import { startScriptedLlmServer, type LlmScriptInput, type ScriptedLlmServer } from '../../testing/src/index.js';
import {
  LlmClient,
  LlmError,
  MALFORMED_REASONS,
  type ForcedToolCallRequest,
  type LlmClientOptions,
  type Provider,
} from './index.js';

const OPENAI_KEY = 'sk-proj-openaiSECRET0123456789abcdefXYZ';
const ANTHROPIC_KEY = 'sk-ant-api03-anthropicSECRET0123456789abcdef';
const TOOL = {
  name: 'submit_changes',
  description: 'Submit the changes',
  inputSchema: { type: 'object', properties: { summary: { type: 'string' } }, required: ['summary'], additionalProperties: false },
};
const SYSTEM = 'You are the Builder. Follow the rules.';
const FAST_RETRY = { 'retry-after-ms': '1' };

function request(provider: Provider, extra: Partial<ForcedToolCallRequest> = {}): ForcedToolCallRequest {
  return {
    provider,
    model: provider === 'openai' ? 'gpt-5.6-sol' : 'claude-sonnet-5-5',
    system: SYSTEM,
    prompt: 'Implement phase-1.',
    tool: TOOL,
    maxTokens: 4000,
    ...extra,
  };
}

describe('LlmClient against the scripted server', () => {
  let server: ScriptedLlmServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function setup(script: LlmScriptInput, opts: Partial<LlmClientOptions> & { serverApiKey?: string } = {}) {
    const { serverApiKey, ...clientOpts } = opts;
    server = await startScriptedLlmServer({ script, ...(serverApiKey ? { apiKey: serverApiKey } : {}) });
    const client = new LlmClient({
      openaiApiKey: OPENAI_KEY,
      anthropicApiKey: ANTHROPIC_KEY,
      openaiBaseUrl: server.openaiBaseUrl,
      anthropicBaseUrl: server.anthropicBaseUrl,
      maxRetries: 2,
      ...clientOpts,
    });
    return { s: server, client };
  }

  async function failure(p: Promise<unknown>): Promise<LlmError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof LlmError)) throw new Error(`expected an LlmError, got ${String(err)}`);
    return err;
  }

  it('sends a cacheable prefix before the prompt: its own Anthropic block with a cache breakpoint, the same OpenAI message', async () => {
    const { s, client } = await setup({ replies: [{ tool: 'submit_changes', arguments: { summary: 'done' }, times: 2 }] });
    await client.callTool(request('anthropic', { cacheablePrefix: '# Repository context\nstable files' }));
    await client.callTool(request('openai', { cacheablePrefix: '# Repository context\nstable files' }));
    const [anthropic, openai] = s.requests.map((r) => r.body as Record<string, unknown>);
    expect(anthropic.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: '# Repository context\nstable files', cache_control: { type: 'ephemeral' } },
          { type: 'text', text: 'Implement phase-1.' },
        ],
      },
    ]);
    expect(openai.messages).toEqual([
      { role: 'system', content: SYSTEM },
      { role: 'user', content: '# Repository context\nstable files\n\nImplement phase-1.' },
    ]);
  });

  describe.each([false, true])('stream=%s', (stream) => {
    it('OpenAI: forced tool call returns the input, usage with cached tokens, and sends tool_choice', async () => {
      const { s, client } = await setup({
        replies: [{ tool: 'submit_changes', arguments: { summary: 'done' }, usage: { input_tokens: 1200, output_tokens: 300, cached_tokens: 1000 } }],
      });
      const r = await client.callTool(request('openai', { stream, temperature: 0.2 }));
      expect(r).toMatchObject({
        provider: 'openai',
        model: 'gpt-5.6-sol',
        toolInput: { summary: 'done' },
        text: '',
        usage: { promptTokens: 1200, completionTokens: 300, cachedTokens: 1000 },
        stopReason: 'tool_calls',
        truncated: false,
      });
      expect(r.malformedReason).toBeUndefined();
      expect(r.durationMs).toBeGreaterThanOrEqual(0);

      const body = s.requests[0].body as Record<string, unknown>;
      expect(s.requests[0].stream).toBe(stream);
      expect(body.tool_choice).toEqual({ type: 'function', function: { name: 'submit_changes' } });
      expect(body.tools).toEqual([{ type: 'function', function: { name: 'submit_changes', description: TOOL.description, parameters: TOOL.inputSchema } }]);
      expect(body.messages).toEqual([
        { role: 'system', content: SYSTEM },
        { role: 'user', content: 'Implement phase-1.' },
      ]);
      expect(body.max_completion_tokens).toBe(4000);
      expect(body.temperature).toBe(0.2);
      if (stream) expect(body.stream_options).toEqual({ include_usage: true });
    });

    it('Anthropic: forced tool call returns the input, maps cache reads, and caches the system block', async () => {
      const { s, client } = await setup({
        replies: [{ tool: 'submit_changes', arguments: { summary: 'done' }, usage: { input_tokens: 1200, output_tokens: 300, cached_tokens: 1000 } }],
      });
      const r = await client.callTool(request('anthropic', { stream }));
      expect(r).toMatchObject({
        provider: 'anthropic',
        model: 'claude-sonnet-5-5',
        toolInput: { summary: 'done' },
        usage: { promptTokens: 1200, completionTokens: 300, cachedTokens: 1000 },
        stopReason: 'tool_use',
        truncated: false,
      });
      expect(r.malformedReason).toBeUndefined();

      const body = s.requests[0].body as Record<string, unknown>;
      expect(s.requests[0].stream).toBe(stream);
      expect(body.system).toEqual([{ type: 'text', text: SYSTEM, cache_control: { type: 'ephemeral' } }]);
      expect(body.tool_choice).toEqual({ type: 'tool', name: 'submit_changes' });
      expect(body.tools).toEqual([{ name: 'submit_changes', description: TOOL.description, input_schema: TOOL.inputSchema }]);
      expect(body.messages).toEqual([{ role: 'user', content: 'Implement phase-1.' }]);
      expect(body.max_tokens).toBe(4000);
      expect(body).not.toHaveProperty('temperature');
    });

    it.each<Provider>(['openai', 'anthropic'])('%s: a text-only reply is malformed: no tool call', async (provider) => {
      const { client } = await setup({ replies: [{ tool: 'submit_changes', text: 'Sure, here is a diff.' }] });
      const r = await client.callTool(request(provider, { stream }));
      expect(r.toolInput).toBeUndefined();
      expect(r.malformedReason).toBe(MALFORMED_REASONS.noToolCall);
      expect(r.text).toBe('Sure, here is a diff.');
      expect(r.truncated).toBe(false);
    });

    it.each<Provider>(['openai', 'anthropic'])('%s: invalid tool JSON is malformed, not thrown', async (provider) => {
      const { client } = await setup({ replies: [{ tool: 'submit_changes', raw_arguments: '{not json', usage: { input_tokens: 10, output_tokens: 5 } }] });
      const r = await client.callTool(request(provider, { stream }));
      expect(r.toolInput).toBeUndefined();
      expect(r.malformedReason).toBe(MALFORMED_REASONS.invalidJson);
      expect(r.usage.promptTokens).toBe(10);
    });

    it.each<Provider>(['openai', 'anthropic'])('%s: truncation is flagged and the cut-off call is not used', async (provider) => {
      const { client } = await setup({
        replies: [
          { tool: 'submit_changes', raw_arguments: '{"summary": "half', stop_reason: 'max_tokens' },
          { tool: 'submit_changes', arguments: { summary: 'looks complete' }, stop_reason: 'max_tokens' },
        ],
      });
      const cut = await client.callTool(request(provider, { stream }));
      expect(cut.truncated).toBe(true);
      expect(cut.stopReason).toBe(provider === 'openai' ? 'length' : 'max_tokens');
      expect(cut.toolInput).toBeUndefined();
      expect(cut.malformedReason).toBe(MALFORMED_REASONS.invalidJson);

      const parseable = await client.callTool(request(provider, { stream }));
      expect(parseable.truncated).toBe(true);
      expect(parseable.toolInput).toBeUndefined();
      expect(parseable.malformedReason).toBe(MALFORMED_REASONS.truncated);
    });
  });

  it('a tool input that is not an object is malformed', async () => {
    const { client } = await setup({ replies: [{ tool: 'submit_changes', raw_arguments: '[1, 2]', times: 2 }] });
    expect((await client.callTool(request('openai'))).malformedReason).toBe(MALFORMED_REASONS.notAnObject);
    expect((await client.callTool(request('anthropic'))).malformedReason).toBe(MALFORMED_REASONS.notAnObject);
  });

  it('Anthropic streams automatically when maxTokens is too large for a plain request', async () => {
    const { s, client } = await setup({ replies: [{ tool: 'submit_changes', arguments: { summary: 'big' }, times: 2 }] });
    const big = await client.callTool(request('anthropic', { maxTokens: 64_000 }));
    expect(big.toolInput).toEqual({ summary: 'big' });
    await client.callTool(request('anthropic', { maxTokens: 8_000 }));
    expect(s.requests.map((r) => r.stream)).toEqual([true, false]);
  });

  it.each<Provider>(['openai', 'anthropic'])('%s: a 429 is retried by the SDK, then the next reply succeeds', async (provider) => {
    const { s, client } = await setup({
      replies: [
        { tool: 'submit_changes', error: { status: 429, headers: { 'retry-after': '0' } } },
        { tool: 'submit_changes', arguments: { summary: 'after retry' } },
      ],
    });
    const r = await client.callTool(request(provider));
    expect(r.toolInput).toEqual({ summary: 'after retry' });
    expect(s.requests.map((x) => x.status)).toEqual([429, 200]);
  });

  it.each<Provider>(['openai', 'anthropic'])('%s: a 500 past maxRetries -> PROVIDER_UNAVAILABLE, retryable', async (provider) => {
    const { s, client } = await setup({ replies: [{ tool: 'submit_changes', error: { status: 500, headers: FAST_RETRY }, times: 10 }] });
    const err = await failure(client.callTool(request(provider)));
    expect(err.code).toBe('PROVIDER_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.status).toBe(500);
    expect(err.provider).toBe(provider);
    expect(s.requests).toHaveLength(3); // 1 attempt + maxRetries 2
  });

  it.each<Provider>(['openai', 'anthropic'])('%s: an overloaded/429 past maxRetries -> retryable codes with retry-after', async (provider) => {
    const { client } = await setup({
      replies: [
        { tool: 'submit_changes', error: { status: 429, headers: { 'retry-after-ms': '2' } }, times: 3 },
        { tool: 'submit_changes', error: { status: 529, headers: FAST_RETRY }, times: 3 },
      ],
    });
    const limited = await failure(client.callTool(request(provider)));
    expect(limited.toJSON()).toEqual({ code: 'RATE_LIMITED', message: limited.message, provider, status: 429 });
    expect(limited.retryable).toBe(true);
    expect(limited.retryAfterMs).toBe(2);
    const overloaded = await failure(client.callTool(request(provider)));
    expect(overloaded.code).toBe('PROVIDER_UNAVAILABLE');
    expect(overloaded.status).toBe(529);
  });

  it.each<Provider>(['openai', 'anthropic'])('%s: a 401 -> AUTHENTICATION, not retried', async (provider) => {
    const { s, client } = await setup({ replies: [{ tool: 'submit_changes', arguments: { summary: 'x' } }] }, { serverApiKey: 'another-key' });
    const err = await failure(client.callTool(request(provider)));
    expect(err.code).toBe('AUTHENTICATION');
    expect(err.retryable).toBe(false);
    expect(err.status).toBe(401);
    expect(s.requests).toHaveLength(1);
  });

  it.each<Provider>(['openai', 'anthropic'])('%s: no API key appears in an LlmError message or JSON', async (provider) => {
    const key = provider === 'openai' ? OPENAI_KEY : ANTHROPIC_KEY;
    const masked = `${key.slice(0, 8)}*************${key.slice(-4)}`;
    const { client } = await setup({
      replies: [
        {
          tool: 'submit_changes',
          error: {
            status: 401,
            message: `Incorrect API key provided: ${masked}. Sent headers: Authorization: Bearer ${key}, x-api-key: ${key}`,
          },
        },
        { tool: 'submit_changes', error: { status: 400, message: `bad request for key ${key}` } },
      ],
    });
    for (const expected of ['AUTHENTICATION', 'BAD_REQUEST']) {
      const err = await failure(client.callTool(request(provider)));
      expect(err.code).toBe(expected);
      const everything = `${err.message}\n${JSON.stringify(err)}\n${JSON.stringify(err.toJSON())}\n${String(err)}`;
      for (const secret of [OPENAI_KEY, ANTHROPIC_KEY, key.slice(0, 12), key.slice(-10), 'SECRET']) {
        expect(everything).not.toContain(secret);
      }
      expect(err.message).toContain('[REDACTED]');
    }
  });

  it('a request no reply fits (HTTP 400) -> BAD_REQUEST, not retryable', async () => {
    const { s, client } = await setup({ replies: [{ tool: 'submit_review', arguments: { approved: true } }] });
    const err = await failure(client.callTool(request('anthropic')));
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('no scripted reply for tool submit_changes');
    expect(s.requests).toHaveLength(1);
  });

  it('an unconfigured provider -> NO_PROVIDER', async () => {
    const client = new LlmClient({ anthropicApiKey: ANTHROPIC_KEY, anthropicBaseUrl: 'http://127.0.0.1:9' });
    expect(client.hasProvider('openai')).toBe(false);
    expect(client.hasProvider('anthropic')).toBe(true);
    const err = await failure(client.callTool(request('openai')));
    expect(err.toJSON()).toMatchObject({ code: 'NO_PROVIDER', provider: 'openai' });
    expect(err.retryable).toBe(false);
  });

  it('an unreachable provider -> PROVIDER_UNAVAILABLE after retries', async () => {
    const { s } = await setup({ replies: [] });
    const url = s.openaiBaseUrl;
    await s.close();
    server = undefined;
    const client = new LlmClient({ openaiApiKey: OPENAI_KEY, openaiBaseUrl: url, maxRetries: 0 });
    const err = await failure(client.callTool(request('openai')));
    expect(err.code).toBe('PROVIDER_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.status).toBeUndefined();
  });

  it.each<Provider>(['openai', 'anthropic'])('%s: a slow reply past timeoutMs -> TIMEOUT', async (provider) => {
    const { client } = await setup(
      { replies: [{ tool: 'submit_changes', arguments: { summary: 'late' }, delay_ms: 2000 }] },
      { timeoutMs: 100, maxRetries: 0 },
    );
    const err = await failure(client.callTool(request(provider)));
    expect(err.code).toBe('TIMEOUT');
    expect(err.retryable).toBe(true);
  });

  it.each<Provider>(['openai', 'anthropic'])('%s: an aborted call -> ABORTED', async (provider) => {
    const { client } = await setup({ replies: [{ tool: 'submit_changes', arguments: { summary: 'late' }, delay_ms: 2000, times: 2 }] });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await failure(client.callTool(request(provider, { signal: ac.signal })));
    expect(err.code).toBe('ABORTED');
    expect(err.retryable).toBe(false);
    const streamed = await failure(client.callTool(request(provider, { signal: AbortSignal.abort(), stream: true })));
    expect(streamed.code).toBe('ABORTED');
  });

  it('without explicit base URLs the SDKs use OPENAI_BASE_URL / ANTHROPIC_BASE_URL', async () => {
    const { s } = await setup({ replies: [{ tool: 'submit_changes', arguments: { summary: 'env' }, times: 2 }] });
    const saved = { o: process.env.OPENAI_BASE_URL, a: process.env.ANTHROPIC_BASE_URL };
    process.env.OPENAI_BASE_URL = s.openaiBaseUrl;
    process.env.ANTHROPIC_BASE_URL = s.anthropicBaseUrl;
    try {
      const client = new LlmClient({ openaiApiKey: OPENAI_KEY, anthropicApiKey: ANTHROPIC_KEY, maxRetries: 0 });
      expect((await client.callTool(request('openai'))).toolInput).toEqual({ summary: 'env' });
      expect((await client.callTool(request('anthropic'))).toolInput).toEqual({ summary: 'env' });
      expect(s.requests.map((r) => r.provider)).toEqual(['openai', 'anthropic']);
    } finally {
      if (saved.o === undefined) delete process.env.OPENAI_BASE_URL;
      else process.env.OPENAI_BASE_URL = saved.o;
      if (saved.a === undefined) delete process.env.ANTHROPIC_BASE_URL;
      else process.env.ANTHROPIC_BASE_URL = saved.a;
    }
  });
});
