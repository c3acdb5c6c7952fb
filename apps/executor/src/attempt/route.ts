import type { ClaimResponse } from '@app/contracts';
import { escalationStep } from '../attempt-history.js';
import type { TaskProfile } from '../models.js';

/** What the model routes of an attempt match: the phase's task, and how far its attempts escalated. */
export interface AttemptRoute {
  task: TaskProfile;
  step: number;
}

/** The route of a claimed attempt. */
export function routeOf(claim: ClaimResponse): AttemptRoute {
  return {
    task: { category: claim.strategy.task_category, resolvedCategory: claim.strategy.resolved_category, complexity: claim.strategy.complexity },
    step: escalationStep(claim.previous_attempts),
  };
}
