export { RunRepository } from './run.repository.js';
export { TierRepository } from './tier.repository.js';
export { PhaseRepository } from './phase.repository.js';
export { EventRepository } from './event.repository.js';
export type { NewEvent } from './event.repository.js';
export type { PhaseTransitionSet } from './phase.repository.js';
export type { RunTransitionSet } from './run.repository.js';
