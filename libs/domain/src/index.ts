export * from './phase.machine.js';
export * from './run.machine.js';
export * from './tier.machine.js';
export * from './derive.js';
export * from './strategy.js';
export * from './budget.js';
export * from './issues.js';
export * from './quality-gate.js';
