import { readFileSync } from 'node:fs';
import { load as loadYaml } from 'js-yaml';
import { z } from 'zod';
import { DEFAULT_PRICES, type ModelPrice, type Provider, defaultModel } from '@app/llm';
import { ExecutorConfigError } from './config.js';

const Choice = z.strictObject({ provider: z.enum(['openai', 'anthropic']), model: z.string().min(1).max(200) });
const Price = z.strictObject({ input_per_mtok: z.number().min(0), output_per_mtok: z.number().min(0), cached_input_per_mtok: z.number().min(0).optional() });

/** The model-routing file (`AUTOPACK_MODELS`, YAML or JSON). */
export const ModelRoutingFileSchema = z.strictObject({
  builder: Choice.optional(),
  auditor: Choice.optional(),
  secondary_auditor: Choice.optional(),
  max_tokens: z.strictObject({ builder: z.number().int().min(256).max(128_000).optional(), auditor: z.number().int().min(256).max(64_000).optional() }).optional(),
  prices: z.record(z.string(), Price).optional(),
});

/** Who builds and who audits, with prices for cost accounting. */
export interface ModelRouting {
  builder: { provider: Provider; model: string };
  auditor: { provider: Provider; model: string };
  /** The second auditor of high-risk phases, when both providers are available. */
  secondaryAuditor: { provider: Provider; model: string } | undefined;
  builderMaxTokens: number;
  auditorMaxTokens: number;
  prices: Record<string, ModelPrice>;
}

/**
 * Provider choice as in the original: the Builder uses OpenAI when its key is present,
 * otherwise Anthropic; the Auditor uses the other provider when both keys exist. A routing
 * file overrides any of it.
 */
export function resolveModelRouting(keys: { openai: boolean; anthropic: boolean }, file?: string): ModelRouting {
  let overrides: z.infer<typeof ModelRoutingFileSchema> = {};
  if (file) {
    let raw: unknown;
    try {
      raw = loadYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ExecutorConfigError(`AUTOPACK_MODELS: cannot read ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
    const parsed = ModelRoutingFileSchema.safeParse(raw ?? {});
    if (!parsed.success) {
      throw new ExecutorConfigError(`AUTOPACK_MODELS: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    overrides = parsed.data;
  }
  const builderProvider: Provider = keys.openai ? 'openai' : 'anthropic';
  const auditorProvider: Provider = keys.openai && keys.anthropic ? 'anthropic' : builderProvider;
  const builder = overrides.builder ?? { provider: builderProvider, model: defaultModel(builderProvider, 'builder') };
  const auditor = overrides.auditor ?? { provider: auditorProvider, model: defaultModel(auditorProvider, 'auditor') };
  const other: Provider = auditor.provider === 'openai' ? 'anthropic' : 'openai';
  const secondaryAuditor = keys.openai && keys.anthropic ? (overrides.secondary_auditor ?? { provider: other, model: defaultModel(other, 'auditor') }) : undefined;
  for (const choice of [builder, auditor, ...(secondaryAuditor ? [secondaryAuditor] : [])]) {
    if (!keys[choice.provider]) throw new ExecutorConfigError(`AUTOPACK_MODELS routes to ${choice.provider} but no ${choice.provider} key is configured`);
  }
  const prices: Record<string, ModelPrice> = { ...DEFAULT_PRICES };
  for (const [model, p] of Object.entries(overrides.prices ?? {})) {
    prices[model] = { inputPerMTok: p.input_per_mtok, outputPerMTok: p.output_per_mtok, cachedInputPerMTok: p.cached_input_per_mtok };
  }
  return {
    builder,
    auditor,
    secondaryAuditor,
    builderMaxTokens: overrides.max_tokens?.builder ?? 16_384,
    auditorMaxTokens: overrides.max_tokens?.auditor ?? 4_096,
    prices,
  };
}
