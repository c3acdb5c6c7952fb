import type { Provider } from './types.js';

/** The roles that call an LLM. */
export type LlmRole = 'builder' | 'auditor' | 'planner';

/**
 * Default model per provider and role, chosen from the model names the installed SDKs know
 * (`openai` 6.49 `ChatModel`, `@anthropic-ai/sdk` 1.12 `Model`), avoiding models the SDK marks
 * deprecated (`claude-sonnet-4-5*`, `claude-mythos-preview`). Every model stays configurable.
 */
export const DEFAULT_MODELS: Readonly<Record<Provider, Readonly<Record<LlmRole, string>>>> = {
  openai: {
    builder: 'gpt-5.6-sol',
    auditor: 'gpt-5.6-sol',
    planner: 'gpt-5.6-sol',
  },
  anthropic: {
    builder: 'claude-sonnet-5-5',
    auditor: 'claude-opus-5-5',
    planner: 'claude-opus-5-5',
  },
};

/** The default model for `provider` and `role`. */
export function defaultModel(provider: Provider, role: LlmRole): string {
  return DEFAULT_MODELS[provider][role];
}
