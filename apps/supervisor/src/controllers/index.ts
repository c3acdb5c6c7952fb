export { HealthController } from './health.controller.js';
export { PhasesController } from './phases.controller.js';
export { RunsController } from './runs.controller.js';
