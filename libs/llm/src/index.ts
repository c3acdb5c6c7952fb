/** LLM access: forced tool calls through the official OpenAI and Anthropic SDKs, models and prices. */
export * from './types.js';
export * from './errors.js';
export * from './models.js';
export * from './pricing.js';
export * from './llm-client.js';
