import { z } from 'zod';

/*
 * The vocabulary of droplet builds (CONTRACT.md section 8): a build's status, its six steps and
 * their statuses, its approval modes and checkpoints.
 */

/** A build's status. */
export const BUILD_STATUSES = ['queued', 'running', 'awaiting_approval', 'completed', 'failed', 'cancelled'] as const;
/** A build status. */
export type BuildStatus = (typeof BUILD_STATUSES)[number];
/** Zod enum of build statuses. */
export const BuildStatusSchema = z.enum(BUILD_STATUSES);

/** The steps of a build, in order: number, key (what `from_step` may name too) and display name. */
export const BUILD_STEPS = [
  { step: 1, key: 'spec', name: 'SPEC Generation' },
  { step: 2, key: 'package', name: 'Package' },
  { step: 3, key: 'build', name: 'Build' },
  { step: 4, key: 'verify', name: 'Verify' },
  { step: 5, key: 'deploy', name: 'Deploy' },
  { step: 6, key: 'register', name: 'Register' },
] as const;
/** A step number, 1 to 6. */
export type BuildStepNumber = (typeof BUILD_STEPS)[number]['step'];
/** A step key. */
export type BuildStepKey = (typeof BUILD_STEPS)[number]['key'];

/** A step's status. */
export const BUILD_STEP_STATUSES = ['pending', 'running', 'completed', 'failed', 'skipped'] as const;
/** A step status. */
export type BuildStepStatus = (typeof BUILD_STEP_STATUSES)[number];
/** Zod enum of step statuses. */
export const BuildStepStatusSchema = z.enum(BUILD_STEP_STATUSES);

/** How a build waits for an operator: never, at both checkpoints, or once before promotion. */
export const BUILD_APPROVAL_MODES = ['auto', 'checkpoints', 'final'] as const;
/** A build approval mode. */
export type BuildApprovalMode = (typeof BUILD_APPROVAL_MODES)[number];
/** Zod enum of build approval modes. */
export const BuildApprovalModeSchema = z.enum(BUILD_APPROVAL_MODES);

/** Where a build may wait: after the SPEC (step 1) and after Verify (step 4). */
export const BUILD_CHECKPOINTS = ['spec_generated', 'built'] as const;
/** A checkpoint. */
export type BuildCheckpoint = (typeof BUILD_CHECKPOINTS)[number];
/** Zod enum of checkpoints. */
export const BuildCheckpointSchema = z.enum(BUILD_CHECKPOINTS);
