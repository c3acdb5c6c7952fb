export * from './states.js';
export * from './errors.js';
export * from './ids.js';
export * from './runs.contract.js';
export * from './strategy.contract.js';
export * from './executor.contract.js';
export * from './tools.contract.js';
