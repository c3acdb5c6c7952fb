import { readFileSync } from 'node:fs';
import { load as loadYaml } from 'js-yaml';
import { z } from 'zod';
import { resolveCategory } from '@app/domain';
import { DEFAULT_PRICES, type LlmRole, type ModelPrice, type Provider, defaultModel, priceFor } from '@app/llm';
import { ExecutorConfigError } from './config.js';

/*
 * The model-routing file (`AUTOPACK_MODELS`, YAML or JSON). Every key is optional; without a
 * file the provider choice of CONTRACT.md section 3 applies.
 *
 *   builder: { provider: openai, model: gpt-x }            # default model of each role
 *   auditor: { provider: anthropic, model: claude-y }
 *   secondary_auditor: { provider: openai, model: gpt-z }  # second reviewer of high-risk phases
 *   planner: { provider: anthropic, model: claude-z }      # turns a build's intent into a plan (submit_plan)
 *   routes:                                                # phase role x category x complexity; first match wins
 *     - { role: builder, category: security_auth_change, complexity: high, provider: anthropic, model: m1 }
 *   escalation:                                            # models to climb after failed attempts
 *     builder: [ { provider: openai, model: small }, { provider: openai, model: big } ]
 *   fallback:                                              # when a provider still fails after the SDK's retries
 *     openai: { provider: anthropic, model: m2 }
 *     anthropic: { provider: openai, model: m3 }
 *   max_tokens: { builder: 16384, auditor: 4096, planner: 16384 }
 *   prices:                                                # USD per million tokens
 *     gpt-x: { input_per_mtok: 1.25, output_per_mtok: 10, cached_input_per_mtok: 0.125 }
 *
 * A route omits `category` or `complexity` to match any; `category` matches the phase's task
 * category as written or as resolved from an alias (`security_auth` = `security_auth_change`).
 */

const ProviderSchema = z.enum(['openai', 'anthropic']);
const ComplexitySchema = z.enum(['low', 'medium', 'high']);
// Routes are for the roles that work on a phase; the planner has no task to route by.
const PhaseRoleSchema = z.enum(['builder', 'auditor', 'secondary_auditor']);
const ChoiceSchema = z.strictObject({ provider: ProviderSchema, model: z.string().min(1).max(200) });
const PriceSchema = z.strictObject({
  input_per_mtok: z.number().min(0),
  output_per_mtok: z.number().min(0),
  cached_input_per_mtok: z.number().min(0).optional(),
});
const RouteSchema = z.strictObject({
  role: PhaseRoleSchema,
  category: z
    .string()
    .min(1)
    .max(100)
    .refine((c) => c === 'generic' || resolveCategory(c) !== 'generic', { message: 'unknown task category' })
    .optional(),
  complexity: ComplexitySchema.optional(),
  provider: ProviderSchema,
  model: z.string().min(1).max(200),
});
const ChainSchema = z.array(ChoiceSchema).min(1).max(20);

/** The model-routing file (`AUTOPACK_MODELS`, YAML or JSON). */
export const ModelRoutingFileSchema = z.strictObject({
  builder: ChoiceSchema.optional(),
  auditor: ChoiceSchema.optional(),
  secondary_auditor: ChoiceSchema.optional(),
  planner: ChoiceSchema.optional(),
  routes: z.array(RouteSchema).max(500).optional(),
  escalation: z
    .strictObject({ builder: ChainSchema.optional(), auditor: ChainSchema.optional(), secondary_auditor: ChainSchema.optional(), planner: ChainSchema.optional() })
    .optional(),
  fallback: z.strictObject({ openai: ChoiceSchema.optional(), anthropic: ChoiceSchema.optional() }).optional(),
  max_tokens: z
    .strictObject({
      builder: z.number().int().min(256).max(128_000).optional(),
      auditor: z.number().int().min(256).max(64_000).optional(),
      planner: z.number().int().min(256).max(128_000).optional(),
    })
    .optional(),
  prices: z.record(z.string(), PriceSchema).optional(),
});
/** The parsed model-routing file. */
export type ModelRoutingFile = z.infer<typeof ModelRoutingFileSchema>;

/** A role whose model is routed: the phase roles, and the planner (default, escalation, fallback; no routes). */
export type RoutedRole = z.infer<typeof PhaseRoleSchema> | 'planner';

/** One provider and model. */
export interface ModelChoice {
  provider: Provider;
  model: string;
}

/** A route of the file: role x category x complexity -> model. */
export type ModelRoute = z.infer<typeof RouteSchema>;

/** What a route matches: the phase's task category (as written and resolved) and complexity. */
export interface TaskProfile {
  category: string;
  resolvedCategory: string;
  complexity: 'low' | 'medium' | 'high';
}

/** Who builds and who audits (per task and attempt), fallbacks, and prices for cost accounting. */
export interface ModelRouting {
  /** The model of each role when no route matches; no secondary auditor = single audit. */
  defaults: { builder: ModelChoice; auditor: ModelChoice; secondary_auditor: ModelChoice | undefined; planner: ModelChoice };
  routes: ModelRoute[];
  escalation: Partial<Record<RoutedRole, ModelChoice[]>>;
  /** Configured fallbacks, only those whose provider has a key. */
  fallback: Partial<Record<Provider, ModelChoice>>;
  /** Which providers have a key (the default fallback is the other provider). */
  available: Record<Provider, boolean>;
  builderMaxTokens: number;
  auditorMaxTokens: number;
  /** A plan names every tier and phase with their scopes and criteria: as long as a builder's reply. */
  plannerMaxTokens: number;
  prices: Record<string, ModelPrice>;
}

const sameChoice = (a: ModelChoice, b: ModelChoice) => a.provider === b.provider && a.model === b.model;
const otherProvider = (p: Provider): Provider => (p === 'openai' ? 'anthropic' : 'openai');
const llmRole = (role: RoutedRole): LlmRole => (role === 'secondary_auditor' ? 'auditor' : role);

function readRoutingFile(file: string): ModelRoutingFile {
  let raw: unknown;
  try {
    raw = loadYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ExecutorConfigError(`AUTOPACK_MODELS: cannot read ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = ModelRoutingFileSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new ExecutorConfigError(`AUTOPACK_MODELS ${file}: ${problems.slice(0, 10).join('; ')}`);
  }
  return parsed.data;
}

/**
 * Resolves the routing: the provider choice of the original (the Builder uses OpenAI when its
 * key is present, otherwise Anthropic; the Auditor uses the other provider when both keys
 * exist; high-risk phases get a second auditor from the other provider), overridden by the
 * routing file when one is given. Every model the file routes to must have its provider's key.
 */
export function resolveModelRouting(keys: { openai: boolean; anthropic: boolean }, file?: string): ModelRouting {
  const spec: ModelRoutingFile = file ? readRoutingFile(file) : {};
  const builderProvider: Provider = keys.openai ? 'openai' : 'anthropic';
  const auditorProvider: Provider = keys.openai && keys.anthropic ? 'anthropic' : builderProvider;
  const builder = spec.builder ?? { provider: builderProvider, model: defaultModel(builderProvider, 'builder') };
  const auditor = spec.auditor ?? { provider: auditorProvider, model: defaultModel(auditorProvider, 'auditor') };
  const second = otherProvider(auditor.provider);
  const secondaryAuditor = spec.secondary_auditor ?? (keys.openai && keys.anthropic ? { provider: second, model: defaultModel(second, 'auditor') } : undefined);
  // The planner writes what the builder builds: by default it is the builder's provider.
  const planner = spec.planner ?? { provider: builderProvider, model: defaultModel(builderProvider, 'planner') };

  const needsKey: [string, ModelChoice][] = [
    ['builder', builder],
    ['auditor', auditor],
    ...(secondaryAuditor ? ([['secondary_auditor', secondaryAuditor]] as [string, ModelChoice][]) : []),
    ['planner', planner],
    ...(spec.routes ?? []).map((r, i): [string, ModelChoice] => [`routes.${i}`, r]),
    ...Object.entries(spec.escalation ?? {}).flatMap(([role, chain]) => (chain ?? []).map((c, i): [string, ModelChoice] => [`escalation.${role}.${i}`, c])),
  ];
  for (const [where, choice] of needsKey) {
    if (!keys[choice.provider]) throw new ExecutorConfigError(`AUTOPACK_MODELS: ${where} routes to ${choice.provider} (${choice.model}) but no ${choice.provider} key is configured`);
  }

  const fallback: Partial<Record<Provider, ModelChoice>> = {};
  for (const [from, to] of Object.entries(spec.fallback ?? {}) as [Provider, ModelChoice | undefined][]) {
    if (to && keys[to.provider]) fallback[from] = to;
  }
  const prices: Record<string, ModelPrice> = { ...DEFAULT_PRICES };
  for (const [model, p] of Object.entries(spec.prices ?? {})) {
    prices[model] = { inputPerMTok: p.input_per_mtok, outputPerMTok: p.output_per_mtok, cachedInputPerMTok: p.cached_input_per_mtok };
  }
  return {
    defaults: { builder, auditor, secondary_auditor: secondaryAuditor, planner },
    routes: spec.routes ?? [],
    escalation: spec.escalation ?? {},
    fallback,
    available: { openai: keys.openai, anthropic: keys.anthropic },
    builderMaxTokens: spec.max_tokens?.builder ?? 16_384,
    auditorMaxTokens: spec.max_tokens?.auditor ?? 4_096,
    plannerMaxTokens: spec.max_tokens?.planner ?? 16_384,
    prices,
  };
}

/**
 * The model of `role` for a task at an escalation step (0 for a first try; see
 * `escalationStep`). The base model is the first matching route's, else the role's default.
 * With an escalation chain, each step climbs one entry: from the base model's position when
 * the chain contains it, otherwise starting at the chain's first entry; the last entry is
 * kept once reached. Undefined only for a secondary auditor that is not configured.
 */
export function modelFor(routing: ModelRouting, role: RoutedRole, task: TaskProfile, step: number): ModelChoice | undefined {
  const route = routing.routes.find(
    (r) =>
      r.role === role &&
      (r.category === undefined || r.category === task.category || r.category === task.resolvedCategory) &&
      (r.complexity === undefined || r.complexity === task.complexity),
  );
  const base = route ? { provider: route.provider, model: route.model } : routing.defaults[role];
  const chain = routing.escalation[role];
  if (!base || !chain || step <= 0) return base;
  const from = chain.findIndex((c) => sameChoice(c, base));
  const index = from >= 0 ? from + step : step - 1;
  return chain[Math.min(index, chain.length - 1)];
}

/**
 * Where to call again when `failed` still fails after the SDK's retries: the file's fallback
 * for its provider, else (when both keys exist) the other provider's default model for the
 * role. Undefined when there is nowhere else to go.
 */
export function fallbackFor(routing: ModelRouting, role: RoutedRole, failed: ModelChoice): ModelChoice | undefined {
  const other = otherProvider(failed.provider);
  const target = routing.fallback[failed.provider] ?? (routing.available[other] ? { provider: other, model: defaultModel(other, llmRole(role)) } : undefined);
  return target && !sameChoice(target, failed) ? target : undefined;
}

/** The roles that work on a planned phase (the planner works on the plan only). */
const PHASE_ROLES: readonly RoutedRole[] = PhaseRoleSchema.options;

/**
 * The highest price, in USD per million tokens, of any model a phase's calls may go to: every
 * role's default, route, escalation entry and fallback, at the higher of its input and output
 * price. A plan's worst case is priced with it (`validatePlan`'s `worstCaseUsdPerMTok`), so it
 * bounds every call whatever the routing picks. Unknown prices count as 0, as in usage accounting.
 */
export function highestPricePerMTok(routing: ModelRouting): number {
  const choices: ModelChoice[] = [];
  for (const role of PHASE_ROLES) {
    const base = routing.defaults[role];
    if (base) choices.push(base);
    choices.push(...routing.routes.filter((r) => r.role === role), ...(routing.escalation[role] ?? []));
  }
  for (const choice of [...choices]) {
    for (const role of PHASE_ROLES) {
      const fallback = fallbackFor(routing, role, choice);
      if (fallback) choices.push(fallback);
    }
  }
  return Math.max(
    0,
    ...choices.map((c) => {
      const price = priceFor(c.model, routing.prices);
      return price ? Math.max(price.inputPerMTok, price.outputPerMTok) : 0;
    }),
  );
}
