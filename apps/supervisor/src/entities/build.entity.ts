import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { BuildApprovalMode, BuildCheckpoint, BuildStatus, BuildStepStatus, HealthCheck, Hook, NotifyChannel, SubmitPlanArgs } from '@app/contracts';

/** The hooks a build request gave (those it left out come from the configuration when called). */
export interface BuildHooks {
  deploy?: Hook;
  health_check?: HealthCheck;
  register?: Hook;
  rollback?: Hook;
}

/** A droplet build: the run made from an intent (`runId` is the build id), with its status. */
@Entity({ name: 'builds' })
export class BuildEntity {
  @PrimaryColumn({ name: 'run_id', type: 'text' }) runId!: string;
  @Column({ name: 'droplet_id', type: 'text', nullable: true }) dropletId!: string | null;
  @Column({ name: 'droplet_name', type: 'text', nullable: true }) dropletName!: string | null;
  @Column({ type: 'text' }) intent!: string;
  @Column({ name: 'approval_mode', type: 'text' }) approvalMode!: BuildApprovalMode;
  @Column({ name: 'auto_deploy', type: 'boolean' }) autoDeploy!: boolean;
  @Column({ name: 'notify_channels', type: 'jsonb', nullable: true }) notifyChannels!: NotifyChannel[] | null;
  @Column({ type: 'jsonb' }) hooks!: BuildHooks;
  @Column({ type: 'text' }) status!: BuildStatus;
  /** Where the build waits, exactly while `awaiting_approval`. */
  @Column({ type: 'text', nullable: true }) checkpoint!: BuildCheckpoint | null;
  @Column({ name: 'deployment_url', type: 'text', nullable: true }) deploymentUrl!: string | null;
  @Column({ type: 'text', nullable: true }) error!: string | null;
  /** The integration branch's commit before promotion (what a rollback resets to; null for a branch created by it). */
  @Column({ name: 'promoted_from', type: 'text', nullable: true }) promotedFrom!: string | null;
  @Column({ name: 'promoted_to', type: 'text', nullable: true }) promotedTo!: string | null;
  /** `promotedFrom` is recorded (before the base branch moved): a resumed promotion keeps it. */
  @Column({ name: 'promotion_started', type: 'boolean' }) promotionStarted!: boolean;
  /** The plan the planning step had accepted (its tiers and phases are in the run). */
  @Column({ type: 'jsonb', nullable: true }) plan!: SubmitPlanArgs | null;
  /** Bumped by each retry: hooks and notifications of a new generation are new deliveries. */
  @Column({ type: 'int' }) generation!: number;
  /** When it (last) joined the queue: first come, first started. */
  @Column({ name: 'queued_at', type: 'timestamptz' }) queuedAt!: Date;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt!: Date | null;
  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true }) completedAt!: Date | null;
  @Column({ type: 'int' }) version!: number;
}

/** One of a build's six steps. */
@Entity({ name: 'build_steps' })
export class BuildStepEntity {
  @PrimaryColumn({ name: 'run_id', type: 'text' }) runId!: string;
  @PrimaryColumn({ type: 'int' }) step!: number;
  @Column({ type: 'text' }) status!: BuildStepStatus;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt!: Date | null;
  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true }) completedAt!: Date | null;
  /** Times the step was started (a retry starts it again). */
  @Column({ type: 'int' }) tries!: number;
  @Column({ type: 'text', nullable: true }) error!: string | null;
}
