import { InitialSchema1732300000000 } from './1732300000000-initial-schema.js';
import { ControlPlane1732400000000 } from './1732400000000-control-plane.js';
import { Idempotency1732500000000 } from './1732500000000-idempotency.js';
import { AttemptNumbers1732600000000 } from './1732600000000-attempt-numbers.js';
import { FailureCaps1732700000000 } from './1732700000000-failure-caps.js';
import { IdempotencyAnswersOnly1732800000000 } from './1732800000000-idempotency-answers-only.js';
import { Deliveries1732900000000 } from './1732900000000-deliveries.js';
import { Builds1733000000000 } from './1733000000000-builds.js';
import { BuildOrchestration1733100000000 } from './1733100000000-build-orchestration.js';
import { Capabilities1733200000000 } from './1733200000000-capabilities.js';
import { Coordinator1733300000000 } from './1733300000000-coordinator.js';

/** Migrations in order; run on start (never `synchronize`). */
export const MIGRATIONS = [InitialSchema1732300000000, ControlPlane1732400000000, Idempotency1732500000000, AttemptNumbers1732600000000, FailureCaps1732700000000, IdempotencyAnswersOnly1732800000000, Deliveries1732900000000, Builds1733000000000, BuildOrchestration1733100000000, Capabilities1733200000000, Coordinator1733300000000];
