import type { LlmUsage } from './types.js';

/** Price of a model in US dollars per million tokens. */
export interface ModelPrice {
  /** Uncached input tokens. */
  inputPerMTok: number;
  /** Output tokens. */
  outputPerMTok: number;
  /** Cached input tokens (cache reads); defaults to `inputPerMTok` when absent. */
  cachedInputPerMTok?: number;
}

/**
 * Default prices (USD per million tokens) for the default models and their close relatives.
 * These are planning estimates for budget caps, not billing data: override them through the
 * model-routing file (`AUTOPACK_MODELS`) when the provider's price list differs.
 */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = {
  'gpt-5.6-sol': { inputPerMTok: 1.25, outputPerMTok: 10, cachedInputPerMTok: 0.125 },
  'gpt-5.4': { inputPerMTok: 1.25, outputPerMTok: 10, cachedInputPerMTok: 0.125 },
  'gpt-5.4-mini': { inputPerMTok: 0.25, outputPerMTok: 2, cachedInputPerMTok: 0.025 },
  'claude-opus-5-5': { inputPerMTok: 5, outputPerMTok: 25, cachedInputPerMTok: 0.5 },
  'claude-sonnet-5-5': { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3 },
  'claude-haiku-5-5': { inputPerMTok: 1, outputPerMTok: 5, cachedInputPerMTok: 0.1 },
};

/** The price of `model` in `table` (default: {@link DEFAULT_PRICES}), or undefined when unknown. */
export function priceFor(model: string, table: Readonly<Record<string, ModelPrice>> = DEFAULT_PRICES): ModelPrice | undefined {
  return Object.prototype.hasOwnProperty.call(table, model) ? table[model] : undefined;
}

/** Rough token estimate: ceil(characters / 4). */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Cost in USD of a call's usage; cached input tokens are charged at the cached rate. */
export function costUsd(price: ModelPrice, usage: LlmUsage): number {
  const cached = Math.min(Math.max(usage.cachedTokens, 0), usage.promptTokens);
  const uncached = usage.promptTokens - cached;
  const cachedRate = price.cachedInputPerMTok ?? price.inputPerMTok;
  return (uncached * price.inputPerMTok + cached * cachedRate + usage.completionTokens * price.outputPerMTok) / 1_000_000;
}

/** Upper bound in USD of a call before it is made: no cache discount and the full `maxTokens` of output. */
export function worstCaseCostUsd(price: ModelPrice, promptTokensEstimate: number, maxTokens: number): number {
  return (promptTokensEstimate * price.inputPerMTok + maxTokens * price.outputPerMTok) / 1_000_000;
}
