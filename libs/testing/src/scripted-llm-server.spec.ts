import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import {
  loadLlmScript,
  LlmScriptError,
  parseLlmScript,
  serveScriptFromFile,
  startScriptedLlmServer,
  type LlmScriptInput,
  type ScriptedLlmServer,
} from './index.js';

const OPENAI_KEY = 'sk-test-openai-0123456789abcdef';
const ANTHROPIC_KEY = 'sk-ant-test-0123456789abcdef';
const TOOL = 'submit_changes';
const ARGS = { summary: 'did it', edits: [{ path: 'src/a.ts', action: 'create', content: 'export const a = 1;\n'.repeat(20) }] };

const toolSchema = { type: 'object', properties: { summary: { type: 'string' } }, required: ['summary'] };

function openaiClient(server: ScriptedLlmServer, maxRetries = 0): OpenAI {
  return new OpenAI({ baseURL: server.openaiBaseUrl, apiKey: OPENAI_KEY, maxRetries });
}
function anthropicClient(server: ScriptedLlmServer, maxRetries = 0): Anthropic {
  return new Anthropic({ baseURL: server.anthropicBaseUrl, apiKey: ANTHROPIC_KEY, maxRetries });
}

function openaiBody(prompt: string, tool = TOOL) {
  return {
    model: 'gpt-5.6-sol',
    messages: [
      { role: 'system' as const, content: 'You are the builder.' },
      { role: 'user' as const, content: prompt },
    ],
    tools: [{ type: 'function' as const, function: { name: tool, description: 'submit', parameters: toolSchema } }],
    tool_choice: { type: 'function' as const, function: { name: tool } },
    max_completion_tokens: 1000,
  };
}

function anthropicBody(prompt: string, tool = TOOL) {
  return {
    model: 'claude-sonnet-5-5',
    max_tokens: 1000,
    system: [{ type: 'text' as const, text: 'You are the builder.', cache_control: { type: 'ephemeral' as const } }],
    messages: [{ role: 'user' as const, content: prompt }],
    tools: [{ name: tool, description: 'submit', input_schema: toolSchema as Anthropic.Tool.InputSchema }],
    tool_choice: { type: 'tool' as const, name: tool },
  };
}

describe('scripted LLM server', () => {
  let server: ScriptedLlmServer | undefined;
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'scripted-llm-'));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function start(script: LlmScriptInput, extra: { recordFile?: string; apiKey?: string } = {}): Promise<ScriptedLlmServer> {
    server = await startScriptedLlmServer({ script, ...extra });
    return server;
  }

  describe('OpenAI chat completions', () => {
    it('answers a forced tool call (non-stream) with the scripted arguments and usage', async () => {
      const s = await start({ replies: [{ tool: TOOL, arguments: ARGS, usage: { input_tokens: 1200, output_tokens: 300, cached_tokens: 1000 } }] });
      const res = await openaiClient(s).chat.completions.create(openaiBody('phase-1 please'));
      expect(res.object).toBe('chat.completion');
      expect(res.model).toBe('gpt-5.6-sol');
      const choice = res.choices[0];
      expect(choice.finish_reason).toBe('tool_calls');
      const call = choice.message.tool_calls?.[0];
      expect(call?.type).toBe('function');
      if (call?.type !== 'function') throw new Error('expected a function call');
      expect(call.function.name).toBe(TOOL);
      expect(JSON.parse(call.function.arguments)).toEqual(ARGS);
      expect(res.usage).toMatchObject({ prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500, prompt_tokens_details: { cached_tokens: 1000 } });

      expect(s.requests).toHaveLength(1);
      expect(s.requests[0]).toMatchObject({
        seq: 1, provider: 'openai', path: '/v1/chat/completions', model: 'gpt-5.6-sol', tool: TOOL,
        stream: false, replyIndex: 0, status: 200, hasApiKey: true,
      });
      expect(s.requests[0].text).toContain('You are the builder.');
      expect(s.requests[0].text).toContain('phase-1 please');
      expect(s.remainingReplies()).toEqual([]);
    });

    it('streams tool call arguments in several chunks, then a usage chunk and [DONE]', async () => {
      const s = await start({ replies: [{ tool: TOOL, arguments: ARGS, usage: { input_tokens: 50, output_tokens: 20, cached_tokens: 10 } }] });
      const stream = await openaiClient(s).chat.completions.create({ ...openaiBody('go'), stream: true, stream_options: { include_usage: true } });
      let args = '';
      let argChunks = 0;
      let name: string | undefined;
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        expect(chunk.object).toBe('chat.completion.chunk');
        if (chunk.usage) usage = chunk.usage;
        const c = chunk.choices[0];
        if (!c) continue;
        for (const tc of c.delta.tool_calls ?? []) {
          if (tc.function?.name) name = tc.function.name;
          if (tc.function?.arguments) {
            args += tc.function.arguments;
            argChunks++;
          }
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
      expect(name).toBe(TOOL);
      expect(argChunks).toBeGreaterThanOrEqual(2);
      expect(JSON.parse(args)).toEqual(ARGS);
      expect(finish).toBe('tool_calls');
      expect(usage).toMatchObject({ prompt_tokens: 50, completion_tokens: 20, prompt_tokens_details: { cached_tokens: 10 } });
      expect(s.requests[0].stream).toBe(true);
    });

    it('estimates usage as ceil(chars/4) when the script gives none', async () => {
      const s = await start({ replies: [{ tool: TOOL, arguments: { summary: 'x' } }] });
      const res = await openaiClient(s).chat.completions.create(openaiBody('hello'));
      const text = 'You are the builder.\nhello';
      expect(res.usage?.prompt_tokens).toBe(Math.ceil(text.length / 4));
      expect(res.usage?.completion_tokens).toBe(Math.ceil(JSON.stringify({ summary: 'x' }).length / 4));
    });

    it('returns raw_arguments verbatim and reports truncation as finish_reason "length"', async () => {
      const s = await start({ replies: [{ tool: TOOL, raw_arguments: '{"summary": "cut', stop_reason: 'max_tokens' }] });
      const res = await openaiClient(s).chat.completions.create(openaiBody('go'));
      const call = res.choices[0].message.tool_calls?.[0];
      if (call?.type !== 'function') throw new Error('expected a function call');
      expect(call.function.arguments).toBe('{"summary": "cut');
      expect(res.choices[0].finish_reason).toBe('length');
    });
  });

  describe('Anthropic messages', () => {
    it('answers a forced tool call (non-stream) with the scripted input and usage', async () => {
      const s = await start({ replies: [{ tool: TOOL, arguments: ARGS, usage: { input_tokens: 1200, output_tokens: 300, cached_tokens: 1000 } }] });
      const msg = await anthropicClient(s).messages.create(anthropicBody('phase-1 please'));
      expect(msg.type).toBe('message');
      expect(msg.stop_reason).toBe('tool_use');
      const block = msg.content[0];
      if (block.type !== 'tool_use') throw new Error(`expected tool_use, got ${block.type}`);
      expect(block.name).toBe(TOOL);
      expect(block.input).toEqual(ARGS);
      expect(msg.usage).toMatchObject({ input_tokens: 200, output_tokens: 300, cache_read_input_tokens: 1000, cache_creation_input_tokens: 0 });
      expect(s.requests[0]).toMatchObject({ provider: 'anthropic', path: '/v1/messages', tool: TOOL, model: 'claude-sonnet-5-5', stream: false, status: 200, hasApiKey: true });
      expect(s.requests[0].text).toBe('You are the builder.\nphase-1 please');
    });

    it('streams tool input as input_json_delta events that the SDK assembles', async () => {
      const s = await start({ replies: [{ tool: TOOL, arguments: ARGS, usage: { input_tokens: 80, output_tokens: 40, cached_tokens: 30 } }] });
      const stream = anthropicClient(s).messages.stream(anthropicBody('go'));
      const types: string[] = [];
      let jsonDeltas = 0;
      stream.on('streamEvent', (e) => {
        types.push(e.type);
        if (e.type === 'content_block_delta' && e.delta.type === 'input_json_delta') jsonDeltas++;
      });
      const msg = await stream.finalMessage();
      expect(jsonDeltas).toBeGreaterThanOrEqual(2);
      expect(types[0]).toBe('message_start');
      expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
      const block = msg.content[0];
      if (block.type !== 'tool_use') throw new Error('expected tool_use');
      expect(block.input).toEqual(ARGS);
      expect(msg.stop_reason).toBe('tool_use');
      expect(msg.usage).toMatchObject({ input_tokens: 50, output_tokens: 40, cache_read_input_tokens: 30 });
      expect(s.requests[0].stream).toBe(true);
    });

    it('reports truncation as stop_reason "max_tokens" and raw_arguments as a string input', async () => {
      const s = await start({ replies: [{ tool: TOOL, raw_arguments: '{not json', stop_reason: 'max_tokens' }] });
      const msg = await anthropicClient(s).messages.create(anthropicBody('go'));
      expect(msg.stop_reason).toBe('max_tokens');
      const block = msg.content[0];
      if (block.type !== 'tool_use') throw new Error('expected tool_use');
      expect(block.input).toBe('{not json');
    });
  });

  it('text replies carry no tool call on either provider, streamed or not', async () => {
    const s = await start({ replies: [{ tool: TOOL, text: 'I would rather chat.', times: 4 }] });
    const oa = await openaiClient(s).chat.completions.create(openaiBody('go'));
    expect(oa.choices[0].message.content).toBe('I would rather chat.');
    expect(oa.choices[0].message.tool_calls).toBeUndefined();
    expect(oa.choices[0].finish_reason).toBe('stop');

    let streamed = '';
    let sawToolCall = false;
    for await (const c of await openaiClient(s).chat.completions.create({ ...openaiBody('go'), stream: true })) {
      streamed += c.choices[0]?.delta.content ?? '';
      if (c.choices[0]?.delta.tool_calls) sawToolCall = true;
    }
    expect(streamed).toBe('I would rather chat.');
    expect(sawToolCall).toBe(false);

    const an = await anthropicClient(s).messages.create(anthropicBody('go'));
    expect(an.content).toEqual([{ type: 'text', text: 'I would rather chat.' }]);
    expect(an.stop_reason).toBe('end_turn');

    const anStream = await anthropicClient(s).messages.stream(anthropicBody('go')).finalMessage();
    expect(anStream.content.map((b) => b.type)).toEqual(['text']);
    expect(anStream.content[0].type === 'text' && anStream.content[0].text).toBe('I would rather chat.');
  });

  it('selects replies by match (substring or list) and provider', async () => {
    const s = await start({
      replies: [
        { tool: TOOL, match: ['phase-2', 'tier-b'], arguments: { summary: 'phase-2 tier-b' }, times: 5 },
        { tool: TOOL, match: 'phase-2', arguments: { summary: 'phase-2' }, times: 5 },
        { tool: TOOL, provider: 'anthropic', arguments: { summary: 'anthropic any' }, times: 5 },
        { tool: TOOL, arguments: { summary: 'fallback' }, times: 5 },
      ],
    });
    const oa = openaiClient(s);
    const summaryOf = async (prompt: string) => {
      const r = await oa.chat.completions.create(openaiBody(prompt));
      const call = r.choices[0].message.tool_calls?.[0];
      return call?.type === 'function' ? (JSON.parse(call.function.arguments) as { summary: string }).summary : undefined;
    };
    expect(await summaryOf('work on phase-2 of tier-b')).toBe('phase-2 tier-b');
    expect(await summaryOf('work on phase-2 of tier-a')).toBe('phase-2');
    expect(await summaryOf('work on phase-3')).toBe('fallback');

    const an = await anthropicClient(s).messages.create(anthropicBody('work on phase-3'));
    expect(an.content[0].type === 'tool_use' && an.content[0].input).toEqual({ summary: 'anthropic any' });
    expect(s.requests.map((r) => r.replyIndex)).toEqual([0, 1, 3, 2]);
  });

  it('uses replies in order, honours times, and answers 400 once nothing fits', async () => {
    const s = await start({
      replies: [
        { tool: TOOL, arguments: { summary: 'first' }, times: 2 },
        { tool: TOOL, arguments: { summary: 'second' } },
        { tool: 'submit_review', arguments: { approved: true } },
      ],
    });
    const oa = openaiClient(s, 3);
    const summaries: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await oa.chat.completions.create(openaiBody('go'));
      const call = r.choices[0].message.tool_calls?.[0];
      if (call?.type === 'function') summaries.push((JSON.parse(call.function.arguments) as { summary: string }).summary);
    }
    expect(summaries).toEqual(['first', 'first', 'second']);
    expect(s.remainingReplies()).toEqual([{ index: 2, tool: 'submit_review', remaining: 1 }]);

    const err = await oa.chat.completions.create(openaiBody('go')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).status).toBe(400);
    expect((err as Error).message).toContain(`no scripted reply for tool ${TOOL}`);
    // 400 is not retried even though maxRetries is 3.
    expect(s.requestsFor(TOOL)).toHaveLength(4);
    expect(s.requests[3]).toMatchObject({ replyIndex: null, status: 400 });

    const aErr = await anthropicClient(s, 3).messages.create(anthropicBody('go')).catch((e: unknown) => e);
    expect(aErr).toBeInstanceOf(Anthropic.BadRequestError);
    expect((aErr as Error).message).toContain(`no scripted reply for tool ${TOOL}`);
    expect(s.requestsFor(TOOL)).toHaveLength(5);
  });

  it('an error reply 429 with retry-after is retried by the SDKs, which then get the next reply', async () => {
    const rateLimited = { status: 429, headers: { 'retry-after': '0' } };
    const s = await start({
      replies: [
        { tool: TOOL, provider: 'openai', error: rateLimited },
        { tool: TOOL, provider: 'openai', arguments: { summary: 'after 429' } },
        { tool: TOOL, provider: 'anthropic', error: { ...rateLimited, headers: { 'retry-after-ms': '5' } } },
        { tool: TOOL, provider: 'anthropic', arguments: { summary: 'after 429' } },
      ],
    });
    const r = await openaiClient(s, 2).chat.completions.create(openaiBody('go'));
    const call = r.choices[0].message.tool_calls?.[0];
    expect(call?.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ summary: 'after 429' });
    const m = await anthropicClient(s, 2).messages.create(anthropicBody('go'));
    expect(m.content[0].type === 'tool_use' && m.content[0].input).toEqual({ summary: 'after 429' });

    expect(s.requests.map((x) => [x.provider, x.status, x.replyIndex])).toEqual([
      ['openai', 429, 0],
      ['openai', 200, 1],
      ['anthropic', 429, 2],
      ['anthropic', 200, 3],
    ]);
  });

  it('error replies use the provider error shape and a given body verbatim', async () => {
    const s = await start({
      replies: [
        { tool: TOOL, error: { status: 529, message: 'Overloaded' }, provider: 'anthropic' },
        { tool: TOOL, error: { status: 503, body: { custom: true } }, provider: 'openai' },
      ],
    });
    const aErr = (await anthropicClient(s).messages.create(anthropicBody('go')).catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
    expect(aErr.status).toBe(529);
    expect(aErr.error).toMatchObject({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    const res = await fetch(`${s.openaiBaseUrl}/chat/completions`, { method: 'POST', body: JSON.stringify(openaiBody('go')) });
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ custom: true });
  });

  it('never records API keys, only whether one was sent', async () => {
    const recordFile = join(dir, 'records.jsonl');
    const s = await start({ replies: [{ tool: TOOL, arguments: { summary: 'x' }, times: 3 }] }, { recordFile });
    await openaiClient(s).chat.completions.create(openaiBody('go'));
    await anthropicClient(s).messages.create(anthropicBody('go'));
    await fetch(`${s.openaiBaseUrl}/chat/completions`, { method: 'POST', body: JSON.stringify(openaiBody('go')) });

    expect(s.requests.map((r) => r.hasApiKey)).toEqual([true, true, false]);
    const everything = JSON.stringify(s.requests) + (await readFile(recordFile, 'utf8'));
    expect(everything).not.toContain(OPENAI_KEY);
    expect(everything).not.toContain(ANTHROPIC_KEY);
    expect(everything).not.toMatch(/authorization|x-api-key/i);
  });

  it('rejects a wrong API key with 401 when started with apiKey', async () => {
    const s = await start({ replies: [{ tool: TOOL, arguments: { summary: 'x' } }] }, { apiKey: 'the-right-key' });
    const err = await openaiClient(s, 2).chat.completions.create(openaiBody('go')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(s.requests).toHaveLength(1);
    expect(s.requests[0]).toMatchObject({ status: 401, replyIndex: null });
    expect(s.remainingReplies()).toHaveLength(1);
  });

  it('serves admin routes: health, requests and script replacement', async () => {
    const s = await start({ replies: [{ tool: TOOL, arguments: { summary: 'old' } }] });
    await openaiClient(s).chat.completions.create(openaiBody('go'));

    const health = await (await fetch(`${s.url}/_scripted/health`)).json();
    expect(health).toEqual({ ok: true, replies: 1, remaining: 0, requests: 1 });

    const listed = (await (await fetch(`${s.url}/_scripted/requests`)).json()) as Array<{ tool: string; seq: number }>;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ seq: 1, tool: TOOL, provider: 'openai', status: 200 });
    expect(await (await fetch(`${s.url}/_scripted/requests?tool=other`)).json()).toEqual([]);

    const bad = await fetch(`${s.url}/_scripted/script`, { method: 'POST', body: JSON.stringify({ replies: [{ arguments: {} }] }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/replies\.0\.tool/);

    const ok = await fetch(`${s.url}/_scripted/script`, {
      method: 'POST',
      body: JSON.stringify({ replies: [{ tool: TOOL, arguments: { summary: 'new' }, times: 2 }] }),
    });
    expect(await ok.json()).toEqual({ ok: true, replies: 1 });
    expect(s.remainingReplies()).toEqual([{ index: 0, tool: TOOL, remaining: 2 }]);
    const r = await openaiClient(s).chat.completions.create(openaiBody('go'));
    const call = r.choices[0].message.tool_calls?.[0];
    expect(call?.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ summary: 'new' });
    expect(s.requests).toHaveLength(2);
  });

  it('answers 404 on unknown routes and 400 on invalid JSON bodies', async () => {
    const s = await start({ replies: [] });
    expect((await fetch(`${s.url}/v1/embeddings`, { method: 'POST', body: '{}' })).status).toBe(404);
    const bad = await fetch(`${s.anthropicBaseUrl}/v1/messages`, { method: 'POST', body: '{not json' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    expect(s.requests).toHaveLength(1);
    expect(s.requests[0]).toMatchObject({ provider: 'anthropic', status: 400, body: null, replyIndex: null });
  });

  it('appends one JSON line per request to recordFile', async () => {
    const recordFile = join(dir, 'nested', 'requests.jsonl');
    const s = await start({ replies: [{ tool: TOOL, arguments: { summary: 'x' } }] }, { recordFile });
    await openaiClient(s).chat.completions.create(openaiBody('first'));
    await openaiClient(s).chat.completions.create(openaiBody('second')).catch(() => undefined);
    const lines = (await readFile(recordFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => [l.seq, l.status, l.replyIndex])).toEqual([[1, 200, 0], [2, 400, null]]);
    expect(lines[1].text).toContain('second');
  });

  it('delays a reply by delay_ms', async () => {
    const s = await start({ replies: [{ tool: TOOL, arguments: { summary: 'x' }, delay_ms: 150 }] });
    const t0 = Date.now();
    await openaiClient(s).chat.completions.create(openaiBody('go'));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('holds every reply while held and answers them all once released, keeping the counters', async () => {
    const s = await start({ replies: [{ tool: TOOL, arguments: { summary: 'x' }, times: 3 }] });
    s.holdReplies(true);
    let answered = 0;
    const calls = [1, 2].map(() => openaiClient(s).chat.completions.create(openaiBody('held')).then(() => answered++));
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toBe(0);
    expect(s.servedUsage().replies).toBe(0);
    s.holdReplies(false);
    await Promise.all(calls);
    expect(answered).toBe(2);
    expect(s.servedUsage().replies).toBe(2);
    expect(s.remainingReplies()).toEqual([expect.objectContaining({ index: 0, remaining: 1 })]);
  });

  it('adds the extra delay to every reply once set, and stops adding it at 0, keeping the script and counters', async () => {
    const s = await start({ replies: [{ tool: TOOL, arguments: { summary: 'x' }, times: 3 }] });
    s.setExtraDelay(300);
    const t0 = Date.now();
    await openaiClient(s).chat.completions.create(openaiBody('slowed'));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    s.setExtraDelay(0);
    await openaiClient(s).chat.completions.create(openaiBody('fast'));
    expect(s.servedUsage().replies).toBe(2);
    expect(s.remainingReplies()).toEqual([expect.objectContaining({ index: 0, remaining: 1 })]);
  });

  it('sums the usage of the replies it wrote, not of errors or replies whose client left during the delay', async () => {
    const s = await start({
      replies: [
        { tool: TOOL, match: 'slow', arguments: { summary: 'x' }, delay_ms: 2000, usage: { input_tokens: 1000, output_tokens: 100 } },
        { tool: TOOL, match: 'fail', error: { status: 400 }, usage: { input_tokens: 7, output_tokens: 7 } },
        { tool: TOOL, arguments: { summary: 'x' }, usage: { input_tokens: 500, output_tokens: 50, cached_tokens: 20 }, times: 2 },
      ],
    });
    const abort = new AbortController();
    const slow = openaiClient(s).chat.completions.create(openaiBody('slow'), { signal: abort.signal }).catch(() => 'aborted');
    await new Promise((r) => setTimeout(r, 100));
    abort.abort();
    expect(await slow).toBe('aborted');
    await expect(openaiClient(s).chat.completions.create(openaiBody('fail'))).rejects.toThrow();
    await openaiClient(s).chat.completions.create(openaiBody('go'));
    await anthropicClient(s).messages.create(anthropicBody('go'));
    expect(s.servedUsage()).toEqual({ replies: 2, input_tokens: 1000, output_tokens: 100, cached_tokens: 40 });
  });

  describe('script files', () => {
    it('loads and validates YAML and JSON scripts, applying defaults', async () => {
      const yamlPath = join(dir, 'script.yaml');
      await writeFile(
        yamlPath,
        [
          'replies:',
          '  - tool: submit_changes',
          '    match: "phase-2"',
          '    arguments: { summary: "ok", edits: [] }',
          '  - tool: submit_changes',
          '    error: { status: 429, headers: { retry-after: 0 } }',
          '    times: 2',
        ].join('\n'),
      );
      const script = await loadLlmScript(yamlPath);
      expect(script.replies[0]).toMatchObject({ tool: TOOL, match: 'phase-2', arguments: { summary: 'ok', edits: [] }, times: 1 });
      expect(script.replies[1].error).toEqual({ status: 429, headers: { 'retry-after': '0' } });
      expect(script.replies[1].times).toBe(2);

      const jsonPath = join(dir, 'script.json');
      await writeFile(jsonPath, JSON.stringify({ replies: [{ tool: 'submit_review', text: 'hi' }] }));
      expect((await loadLlmScript(jsonPath)).replies[0]).toMatchObject({ tool: 'submit_review', text: 'hi', times: 1 });
    });

    it('rejects bad scripts with errors that name the problem', async () => {
      const bad = join(dir, 'bad.yaml');
      await writeFile(bad, 'replies:\n  - match: x\n    arguments: {}\n  - tool: t\n    text: a\n    arguments: {}\n  - tool: t\n    argumnts: {}\n');
      const err = await loadLlmScript(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LlmScriptError);
      const msg = (err as Error).message;
      expect(msg).toContain(bad);
      expect(msg).toMatch(/replies\.0\.tool/);
      expect(msg).toMatch(/replies\.1.*exactly one of arguments, text, raw_arguments, error, got arguments and text/);
      expect(msg).toMatch(/replies\.2.*argumnts/);

      const unparsable = join(dir, 'broken.yaml');
      await writeFile(unparsable, 'replies: [');
      await expect(loadLlmScript(unparsable)).rejects.toThrow(/cannot parse/);

      expect(() => parseLlmScript({ replies: [{ tool: 't', error: { status: 200 } }] })).toThrow(/replies\.0\.error\.status/);
      expect(() => parseLlmScript({ replies: [{ tool: 't', arguments: {}, times: 0 }] })).toThrow(/replies\.0\.times/);
      expect(() => parseLlmScript({})).toThrow(/replies/);
    });

    it('serveScriptFromFile serves a script file and logs', async () => {
      const path = join(dir, 's.yaml');
      await writeFile(path, 'replies:\n  - tool: submit_review\n    arguments: { approved: true, summary: fine }\n');
      const logs: string[] = [];
      server = await serveScriptFromFile({ scriptPath: path, log: (m) => logs.push(m) });
      const m = await anthropicClient(server).messages.create(anthropicBody('review', 'submit_review'));
      expect(m.content[0].type === 'tool_use' && m.content[0].input).toEqual({ approved: true, summary: 'fine' });
      expect(logs[0]).toContain(server.url);
      expect(logs.some((l) => l.includes('anthropic submit_review -> reply 0 [200]'))).toBe(true);
    });
  });
});
