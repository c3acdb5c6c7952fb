import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { ApprovalMode, CiSpec, FailureCap, RunState, SafetyProfile } from '@app/contracts';
import type { CompiledStrategy } from '@app/domain';

/** numeric/bigint columns come back from pg as strings; store them as numbers in JS. */
export const numericTransformer = {
  to: (v: number | null | undefined) => v,
  from: (v: string | null) => (v === null ? null : Number(v)),
};

/** A run: persistence shape only, no behaviour. */
@Entity({ name: 'runs' })
export class RunEntity {
  @PrimaryColumn({ name: 'run_id', type: 'text' }) runId!: string;
  @Column({ name: 'project_id', type: 'text' }) projectId!: string;
  @Column({ type: 'text' }) state!: RunState;
  @Column({ name: 'safety_profile', type: 'text' }) safetyProfile!: SafetyProfile;
  @Column({ name: 'run_scope', type: 'text' }) runScope!: string;
  @Column({ name: 'approval_mode', type: 'text' }) approvalMode!: ApprovalMode;
  @Column({ name: 'base_branch', type: 'text' }) baseBranch!: string;
  @Column({ name: 'repo_url', type: 'text', nullable: true }) repoUrl!: string | null;
  @Column({ name: 'ci', type: 'jsonb', nullable: true }) ci!: CiSpec | null;
  @Column({ name: 'protected_paths', type: 'jsonb' }) protectedPaths!: string[];
  @Column({ name: 'token_cap', type: 'bigint', transformer: numericTransformer }) tokenCap!: number;
  @Column({ name: 'cost_cap_usd', type: 'numeric', nullable: true, transformer: numericTransformer }) costCapUsd!: number | null;
  @Column({ name: 'max_phases', type: 'int' }) maxPhases!: number;
  @Column({ name: 'max_duration_minutes', type: 'int' }) maxDurationMinutes!: number;
  @Column({ name: 'max_minor_issues_total', type: 'int' }) maxMinorIssuesTotal!: number;
  @Column({ name: 'tokens_used', type: 'bigint', transformer: numericTransformer }) tokensUsed!: number;
  @Column({ name: 'cost_used_usd', type: 'numeric', transformer: numericTransformer }) costUsedUsd!: number;
  @Column({ name: 'ci_runs_used', type: 'int' }) ciRunsUsed!: number;
  @Column({ name: 'minor_issues_count', type: 'int' }) minorIssuesCount!: number;
  @Column({ name: 'major_issues_count', type: 'int' }) majorIssuesCount!: number;
  @Column({ name: 'failure_reason', type: 'text', nullable: true }) failureReason!: string | null;
  /** The cap that ended the run (DONE_FAILED_BUDGET_EXHAUSTED), as a code; null otherwise. */
  @Column({ name: 'failure_cap', type: 'text', nullable: true }) failureCap!: FailureCap | null;
  @Column({ name: 'debt_status', type: 'text', nullable: true }) debtStatus!: string | null;
  @Column({ name: 'strategy', type: 'jsonb' }) strategy!: CompiledStrategy;
  @Column({ name: 'max_parallel_phases', type: 'int' }) maxParallelPhases!: number;
  @Column({ name: 'approved_through_tier_index', type: 'int' }) approvedThroughTierIndex!: number;
  /** Tiers after which the run waits for approval whatever its mode (a droplet build's checkpoints); null: the mode decides. */
  @Column({ name: 'checkpoint_tiers', type: 'int', array: true, nullable: true }) checkpointTiers!: number[] | null;
  @Column({ name: 'approval_state', type: 'text' }) approvalState!: 'not_required' | 'pending' | 'approved' | 'rejected';
  @Column({ name: 'approval_notes', type: 'text', nullable: true }) approvalNotes!: string | null;
  @Column({ name: 'approved_at', type: 'timestamptz', nullable: true }) approvedAt!: Date | null;
  @Column({ name: 'version', type: 'int' }) version!: number;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt!: Date | null;
  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true }) completedAt!: Date | null;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}
