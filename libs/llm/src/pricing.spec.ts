import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { costUsd, DEFAULT_MODELS, DEFAULT_PRICES, defaultModel, estimateTokens, priceFor, worstCaseCostUsd } from './index.js';

describe('pricing', () => {
  const price = { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3 };

  it('estimateTokens is ceil(chars / 4)', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('abcd')).toBe(1);
    expect(estimateTokens('abcde')).toBe(2);
    expect(estimateTokens('x'.repeat(4001))).toBe(1001);
  });

  it('costUsd charges cached input at the cached rate', () => {
    const usage = { promptTokens: 1_000_000, completionTokens: 100_000, cachedTokens: 500_000 };
    expect(costUsd(price, usage)).toBeCloseTo(0.5 * 3 + 0.5 * 0.3 + 0.1 * 15, 10);
    expect(costUsd({ inputPerMTok: 3, outputPerMTok: 15 }, usage)).toBeCloseTo(3 + 1.5, 10);
    // cached tokens can never exceed the prompt
    expect(costUsd(price, { promptTokens: 100, completionTokens: 0, cachedTokens: 1000 })).toBeCloseTo((100 * 0.3) / 1e6, 12);
  });

  it('worstCaseCostUsd assumes no cache and the full output budget', () => {
    expect(worstCaseCostUsd(price, 10_000, 4_000)).toBeCloseTo((10_000 * 3 + 4_000 * 15) / 1e6, 12);
    expect(worstCaseCostUsd(price, 0, 0)).toBe(0);
  });

  it('has a price for every default model, and priceFor ignores unknown or inherited names', () => {
    for (const roles of Object.values(DEFAULT_MODELS)) {
      for (const model of Object.values(roles)) expect(priceFor(model)).toBeDefined();
    }
    expect(priceFor('no-such-model')).toBeUndefined();
    expect(priceFor('toString')).toBeUndefined();
    expect(priceFor('custom', { custom: price })).toBe(price);
    for (const p of Object.values(DEFAULT_PRICES)) {
      expect(p.inputPerMTok).toBeGreaterThan(0);
      expect(p.outputPerMTok).toBeGreaterThan(p.inputPerMTok);
      expect(p.cachedInputPerMTok ?? 0).toBeLessThan(p.inputPerMTok);
    }
  });
});

describe('default models', () => {
  const require = createRequire(import.meta.url);
  const sdkFile = async (pkg: string, rel: string) => readFile(join(dirname(require.resolve(pkg)), rel), 'utf8');

  it('are model names the installed SDKs list', async () => {
    const anthropicTypes = await sdkFile('@anthropic-ai/sdk', 'resources/messages/messages.d.ts');
    const anthropicModels = /export type Model = ([^;]+);/.exec(anthropicTypes)?.[1] ?? '';
    for (const m of Object.values(DEFAULT_MODELS.anthropic)) expect(anthropicModels).toContain(`'${m}'`);

    const openaiTypes = await sdkFile('openai', 'resources/shared.d.ts');
    const openaiModels = /export type ChatModel = ([^;]+);/.exec(openaiTypes)?.[1] ?? '';
    for (const m of Object.values(DEFAULT_MODELS.openai)) expect(openaiModels).toContain(`'${m}'`);
  });

  it('avoid the models the Anthropic SDK marks deprecated', async () => {
    const deprecated = await sdkFile('@anthropic-ai/sdk', 'internal/data/deprecated-models.js');
    expect(deprecated).toContain('claude-sonnet-4-5');
    for (const m of Object.values(DEFAULT_MODELS.anthropic)) expect(deprecated).not.toContain(`'${m}'`);
  });

  it('defaultModel looks up provider and role', () => {
    expect(defaultModel('anthropic', 'builder')).toBe(DEFAULT_MODELS.anthropic.builder);
    expect(defaultModel('openai', 'auditor')).toBe(DEFAULT_MODELS.openai.auditor);
  });
});
