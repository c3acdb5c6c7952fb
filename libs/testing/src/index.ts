/** Test helpers: a scripted, local stand-in for the OpenAI and Anthropic HTTP APIs. */
export * from './llm-script.js';
export * from './scripted-llm-server.js';
