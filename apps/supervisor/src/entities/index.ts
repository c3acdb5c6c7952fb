import { BuildEntity, BuildStepEntity } from './build.entity.js';
import { EventEntity } from './event.entity.js';
import { BacklogEntity, PhaseIssueEntity, RulesetEntity } from './issue.entity.js';
import { PhaseAttemptEntity } from './phase-attempt.entity.js';
import { PhaseEntity } from './phase.entity.js';
import { RunEntity } from './run.entity.js';
import { TierEntity } from './tier.entity.js';

export type { BuildHooks } from './build.entity.js';
export { PHASE_KINDS, type PhaseKind } from './phase.entity.js';
export { BacklogEntity, BuildEntity, BuildStepEntity, EventEntity, PhaseAttemptEntity, PhaseEntity, PhaseIssueEntity, RulesetEntity, RunEntity, TierEntity };
/** Every entity of the supervisor. */
export const ENTITIES = [RunEntity, TierEntity, PhaseEntity, PhaseAttemptEntity, EventEntity, PhaseIssueEntity, BacklogEntity, RulesetEntity, BuildEntity, BuildStepEntity];
