import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultModel } from '@app/llm';
import { ExecutorConfigError } from './config.js';
import { type TaskProfile, fallbackFor, highestPricePerMTok, modelFor, resolveModelRouting } from './models.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'autopack-models-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function routingFile(content: string): string {
  const file = path.join(dir, `routing-${++n}.yaml`);
  writeFileSync(file, content);
  return file;
}

const BOTH = { openai: true, anthropic: true };
const feature: TaskProfile = { category: 'feature_scaffolding', resolvedCategory: 'feature_scaffolding', complexity: 'medium' };
const security: TaskProfile = { category: 'security_auth', resolvedCategory: 'security_auth_change', complexity: 'high' };

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ExecutorConfigError);
    return (err as Error).message;
  }
  throw new Error('expected an ExecutorConfigError');
}

describe('resolveModelRouting without a file (CONTRACT.md section 3)', () => {
  it('builds with OpenAI and audits with Anthropic when both keys exist, with a second auditor from the other provider', () => {
    const r = resolveModelRouting(BOTH);
    expect(modelFor(r, 'builder', feature, 0)).toEqual({ provider: 'openai', model: defaultModel('openai', 'builder') });
    expect(modelFor(r, 'auditor', feature, 0)).toEqual({ provider: 'anthropic', model: defaultModel('anthropic', 'auditor') });
    expect(modelFor(r, 'secondary_auditor', feature, 0)).toEqual({ provider: 'openai', model: defaultModel('openai', 'auditor') });
    // Without chains, failed attempts do not change the model.
    expect(modelFor(r, 'builder', feature, 3)).toEqual(modelFor(r, 'builder', feature, 0));
    expect(r.builderMaxTokens).toBe(16_384);
    expect(r.auditorMaxTokens).toBe(4_096);
  });

  it('uses the only provider there is for every role, with no second auditor and no fallback', () => {
    const anthropicOnly = resolveModelRouting({ openai: false, anthropic: true });
    expect(modelFor(anthropicOnly, 'builder', feature, 0)?.provider).toBe('anthropic');
    expect(modelFor(anthropicOnly, 'auditor', feature, 0)?.provider).toBe('anthropic');
    expect(modelFor(anthropicOnly, 'secondary_auditor', feature, 0)).toBeUndefined();
    expect(fallbackFor(anthropicOnly, 'builder', { provider: 'anthropic', model: 'x' })).toBeUndefined();
    const openaiOnly = resolveModelRouting({ openai: true, anthropic: false });
    expect(modelFor(openaiOnly, 'auditor', feature, 0)?.provider).toBe('openai');
  });

  it('falls back to the other provider default model of the role when both keys exist', () => {
    const r = resolveModelRouting(BOTH);
    expect(fallbackFor(r, 'builder', { provider: 'openai', model: 'gpt-any' })).toEqual({ provider: 'anthropic', model: defaultModel('anthropic', 'builder') });
    expect(fallbackFor(r, 'auditor', { provider: 'anthropic', model: 'claude-any' })).toEqual({ provider: 'openai', model: defaultModel('openai', 'auditor') });
  });
});

describe('resolveModelRouting with a file', () => {
  it('keeps the simple keys working: role defaults, max_tokens and prices', () => {
    const r = resolveModelRouting(
      BOTH,
      routingFile(`
builder: { provider: anthropic, model: b-model }
auditor: { provider: openai, model: a-model }
max_tokens: { builder: 2048, auditor: 1024 }
prices:
  b-model: { input_per_mtok: 2, output_per_mtok: 8, cached_input_per_mtok: 0.5 }
`),
    );
    expect(modelFor(r, 'builder', feature, 0)).toEqual({ provider: 'anthropic', model: 'b-model' });
    expect(modelFor(r, 'auditor', feature, 0)).toEqual({ provider: 'openai', model: 'a-model' });
    expect(modelFor(r, 'secondary_auditor', feature, 0)?.provider).toBe('anthropic');
    expect([r.builderMaxTokens, r.auditorMaxTokens]).toEqual([2048, 1024]);
    expect(r.prices['b-model']).toEqual({ inputPerMTok: 2, outputPerMTok: 8, cachedInputPerMTok: 0.5 });
  });

  it('routes by role x category x complexity, first match wins, aliases match their resolved category', () => {
    const r = resolveModelRouting(
      BOTH,
      routingFile(`
routes:
  - { role: builder, category: security_auth_change, complexity: high, provider: anthropic, model: secure-high }
  - { role: builder, category: security_auth_change, provider: anthropic, model: secure-any }
  - { role: builder, complexity: high, provider: openai, model: any-high }
  - { role: auditor, category: docs, provider: openai, model: docs-auditor }
`),
    );
    expect(modelFor(r, 'builder', security, 0)?.model).toBe('secure-high');
    expect(modelFor(r, 'builder', { ...security, complexity: 'low' }, 0)?.model).toBe('secure-any');
    expect(modelFor(r, 'builder', { ...feature, complexity: 'high' }, 0)?.model).toBe('any-high');
    expect(modelFor(r, 'builder', feature, 0)?.model).toBe(defaultModel('openai', 'builder'));
    expect(modelFor(r, 'auditor', { category: 'docs', resolvedCategory: 'docs', complexity: 'low' }, 0)?.model).toBe('docs-auditor');
    expect(modelFor(r, 'auditor', security, 0)?.model).toBe(defaultModel('anthropic', 'auditor'));
  });

  it('climbs the escalation chain one entry per step from the base model, and stays on the last entry', () => {
    const r = resolveModelRouting(
      BOTH,
      routingFile(`
builder: { provider: openai, model: small }
routes:
  - { role: builder, category: security_auth_change, provider: openai, model: mid }
escalation:
  builder: [ { provider: openai, model: small }, { provider: openai, model: mid }, { provider: anthropic, model: big } ]
  auditor: [ { provider: anthropic, model: careful } ]
`),
    );
    expect([0, 1, 2, 3, 9].map((step) => modelFor(r, 'builder', feature, step)?.model)).toEqual(['small', 'mid', 'big', 'big', 'big']);
    // A route's model inside the chain starts the climb from its own position.
    expect([0, 1, 2].map((step) => modelFor(r, 'builder', security, step)?.model)).toEqual(['mid', 'big', 'big']);
    // A base model outside the chain is followed by the chain's first entry.
    expect([0, 1, 2].map((step) => modelFor(r, 'auditor', feature, step)?.model)).toEqual([defaultModel('anthropic', 'auditor'), 'careful', 'careful']);
  });

  it('uses configured fallbacks when their provider has a key, else the other provider when there is one', () => {
    const file = routingFile(`
fallback:
  openai: { provider: anthropic, model: rescue }
  anthropic: { provider: anthropic, model: other-claude }
`);
    const both = resolveModelRouting(BOTH, file);
    expect(fallbackFor(both, 'builder', { provider: 'openai', model: 'x' })).toEqual({ provider: 'anthropic', model: 'rescue' });
    expect(fallbackFor(both, 'auditor', { provider: 'anthropic', model: 'y' })).toEqual({ provider: 'anthropic', model: 'other-claude' });
    // Never the model that just failed.
    expect(fallbackFor(both, 'auditor', { provider: 'anthropic', model: 'other-claude' })).toBeUndefined();
    const openaiOnly = resolveModelRouting({ openai: true, anthropic: false }, file);
    expect(fallbackFor(openaiOnly, 'builder', { provider: 'openai', model: 'x' })).toBeUndefined();
  });

  it('rejects invalid files with ExecutorConfigError messages naming the problem', () => {
    expect(configError(() => resolveModelRouting(BOTH, path.join(dir, 'missing.yaml')))).toMatch(/^AUTOPACK_MODELS: cannot read .*missing\.yaml/);
    expect(configError(() => resolveModelRouting(BOTH, routingFile('builder: [unclosed')))).toContain('cannot read');
    expect(configError(() => resolveModelRouting(BOTH, routingFile('builder: { provider: mistral, model: m }')))).toContain('builder.provider');
    expect(configError(() => resolveModelRouting(BOTH, routingFile('buildr: { provider: openai, model: m }')))).toContain('buildr');
    expect(configError(() => resolveModelRouting(BOTH, routingFile('routes: [ { role: planner, provider: openai, model: m } ]')))).toContain('routes.0.role');
    expect(configError(() => resolveModelRouting(BOTH, routingFile('routes: [ { role: builder, category: featur_scaffolding, provider: openai, model: m } ]')))).toContain(
      'routes.0.category: unknown task category',
    );
    expect(configError(() => resolveModelRouting(BOTH, routingFile('routes: [ { role: builder, complexity: huge, provider: openai, model: m } ]')))).toContain('routes.0.complexity');
    expect(configError(() => resolveModelRouting(BOTH, routingFile('escalation: { builder: [] }')))).toContain('escalation.builder');
    expect(configError(() => resolveModelRouting(BOTH, routingFile('max_tokens: { builder: 10 }')))).toContain('max_tokens.builder');
    expect(configError(() => resolveModelRouting(BOTH, routingFile('prices: { m: { input_per_mtok: -1, output_per_mtok: 1 } }')))).toContain('prices.m.input_per_mtok');
  });

  it('rejects routes, chains and role defaults that need a provider without a key', () => {
    const openaiOnly = { openai: true, anthropic: false };
    expect(configError(() => resolveModelRouting(openaiOnly, routingFile('auditor: { provider: anthropic, model: c }')))).toContain('auditor routes to anthropic (c) but no anthropic key');
    expect(configError(() => resolveModelRouting(openaiOnly, routingFile('routes: [ { role: builder, provider: anthropic, model: c } ]')))).toContain('routes.0 routes to anthropic');
    expect(configError(() => resolveModelRouting(openaiOnly, routingFile('escalation: { builder: [ { provider: openai, model: a }, { provider: anthropic, model: c } ] }')))).toContain(
      'escalation.builder.1 routes to anthropic',
    );
  });

  it('gives the planner its own model, escalation chain and max_tokens', () => {
    const r = resolveModelRouting(
      BOTH,
      routingFile(`
planner: { provider: anthropic, model: plan-1 }
escalation:
  planner: [ { provider: anthropic, model: plan-1 }, { provider: openai, model: plan-2 } ]
max_tokens: { planner: 32000 }
`),
    );
    expect([0, 1, 2].map((step) => modelFor(r, 'planner', feature, step)?.model)).toEqual(['plan-1', 'plan-2', 'plan-2']);
    expect(r.plannerMaxTokens).toBe(32_000);
    expect(fallbackFor(r, 'planner', { provider: 'anthropic', model: 'plan-1' })).toEqual({ provider: 'openai', model: defaultModel('openai', 'planner') });
    expect(configError(() => resolveModelRouting({ openai: true, anthropic: false }, routingFile('planner: { provider: anthropic, model: p }')))).toContain('planner routes to anthropic (p) but no anthropic key');
    expect(configError(() => resolveModelRouting(BOTH, routingFile('max_tokens: { planner: 10 }')))).toContain('max_tokens.planner');
  });
});

describe('the planner role without a file', () => {
  it.each([
    [BOTH, 'openai'],
    [{ openai: true, anthropic: false }, 'openai'],
    [{ openai: false, anthropic: true }, 'anthropic'],
  ] as const)('plans on the builder provider (keys %o: %s) with its default planner model', (keys, provider) => {
    const r = resolveModelRouting(keys);
    expect(r.defaults.planner).toEqual({ provider, model: defaultModel(provider, 'planner') });
    expect(modelFor(r, 'planner', feature, 2)).toEqual(r.defaults.planner);
    expect(r.plannerMaxTokens).toBe(16_384);
  });
});

describe(highestPricePerMTok.name, () => {
  it('is the highest input or output price of any model a phase role may be routed to, fallbacks included', () => {
    const r = resolveModelRouting(
      BOTH,
      routingFile(`
builder: { provider: openai, model: cheap }
auditor: { provider: openai, model: cheap }
secondary_auditor: { provider: openai, model: cheap }
planner: { provider: openai, model: planner-only }
fallback:
  openai: { provider: anthropic, model: rescue }
prices:
  cheap: { input_per_mtok: 1, output_per_mtok: 2 }
  rescue: { input_per_mtok: 30, output_per_mtok: 7 }
  planner-only: { input_per_mtok: 500, output_per_mtok: 500 }
`),
    );
    expect(highestPricePerMTok(r)).toBe(30);
    const escalated = resolveModelRouting(
      BOTH,
      routingFile(`
builder: { provider: openai, model: cheap }
auditor: { provider: openai, model: cheap }
secondary_auditor: { provider: openai, model: cheap }
fallback:
  openai: { provider: openai, model: cheap }
escalation:
  auditor: [ { provider: openai, model: big } ]
prices:
  cheap: { input_per_mtok: 1, output_per_mtok: 2 }
  big: { input_per_mtok: 3, output_per_mtok: 60 }
`),
    );
    expect(highestPricePerMTok(escalated)).toBe(60);
  });

  it('counts unknown prices as 0', () => {
    const r = resolveModelRouting(BOTH, routingFile('builder: { provider: openai, model: m1 }\nauditor: { provider: openai, model: m2 }\nsecondary_auditor: { provider: openai, model: m3 }\nfallback: { openai: { provider: openai, model: m4 } }'));
    expect(highestPricePerMTok(r)).toBe(0);
  });
});

