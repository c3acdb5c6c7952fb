import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { CiSpec, FailureCap, PhaseKind, PhaseScope, PhaseState } from '@app/contracts';
import { numericTransformer } from './run.entity.js';

export { PHASE_KINDS, type PhaseKind } from '@app/contracts';

/** A phase of a run, with its lease and attempt bookkeeping (the single source of truth). */
@Entity({ name: 'phases' })
export class PhaseEntity {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ name: 'run_id', type: 'text' }) runId!: string;
  @Column({ name: 'phase_id', type: 'text' }) phaseId!: string;
  @Column({ name: 'tier_id', type: 'text' }) tierId!: string;
  @Column({ name: 'phase_index', type: 'int' }) phaseIndex!: number;
  /** What work the phase is: `code` (every phase of an ordinary run), or a build's `plan`, `package`, `verify`, `promote`, `rollback`. */
  @Column({ type: 'text', default: 'code' }) kind!: PhaseKind;
  /** Capabilities an executor must have to be handed this phase. */
  @Column({ type: 'text', array: true, default: () => "'{}'" }) requires!: string[];
  @Column({ type: 'text' }) name!: string;
  @Column({ type: 'text', nullable: true }) description!: string | null;
  @Column({ name: 'task_category', type: 'text', nullable: true }) taskCategory!: string | null;
  @Column({ type: 'text', nullable: true }) complexity!: string | null;
  @Column({ name: 'builder_mode', type: 'text', nullable: true }) builderMode!: string | null;
  @Column({ type: 'jsonb', nullable: true }) scope!: PhaseScope | null;
  @Column({ name: 'acceptance_criteria', type: 'jsonb' }) acceptanceCriteria!: string[];
  @Column({ type: 'jsonb', nullable: true }) ci!: CiSpec | null;
  @Column({ name: 'allow_mass_deletion', type: 'boolean' }) allowMassDeletion!: boolean;
  @Column({ name: 'allow_mass_addition', type: 'boolean' }) allowMassAddition!: boolean;
  @Column({ type: 'text' }) state!: PhaseState;
  /** Attempts charged against `maxAttempts`: a lease handed back uncharged gives its attempt back. */
  @Column({ name: 'attempts_used', type: 'int' }) attemptsUsed!: number;
  /** Claims made so far: the attempt number of the current (or last) claim, never reused. */
  @Column({ name: 'claims_count', type: 'int' }) claimsCount!: number;
  /** Leases of this phase that expired (crashed or cut-off executors); not charged as attempts. */
  @Column({ name: 'abandonments', type: 'int' }) abandonments!: number;
  /** Expiries after which the phase ends FAILED with the reason `abandoned`. */
  @Column({ name: 'max_abandonments', type: 'int' }) maxAbandonments!: number;
  @Column({ name: 'max_attempts', type: 'int' }) maxAttempts!: number;
  @Column({ name: 'lease_token', type: 'uuid', nullable: true }) leaseToken!: string | null;
  @Column({ name: 'lease_owner', type: 'text', nullable: true }) leaseOwner!: string | null;
  @Column({ name: 'lease_expires_at', type: 'timestamptz', nullable: true }) leaseExpiresAt!: Date | null;
  @Column({ name: 'builder_attempts', type: 'int' }) builderAttempts!: number;
  @Column({ name: 'auditor_attempts', type: 'int' }) auditorAttempts!: number;
  @Column({ name: 'tokens_used', type: 'bigint', transformer: numericTransformer }) tokensUsed!: number;
  @Column({ name: 'minor_issues_count', type: 'int' }) minorIssuesCount!: number;
  @Column({ name: 'major_issues_count', type: 'int' }) majorIssuesCount!: number;
  @Column({ name: 'quality_level', type: 'text', nullable: true }) qualityLevel!: string | null;
  @Column({ name: 'last_failure_reason', type: 'text', nullable: true }) lastFailureReason!: string | null;
  /** The cap that failed the phase (attempts, abandonments, incident tokens), as a code; null otherwise. */
  @Column({ name: 'failure_cap', type: 'text', nullable: true }) failureCap!: FailureCap | null;
  @Column({ name: 'commit_sha', type: 'text', nullable: true }) commitSha!: string | null;
  @Column({ name: 'files_changed', type: 'jsonb' }) filesChanged!: string[];
  @Column({ name: 'lines_added', type: 'int' }) linesAdded!: number;
  @Column({ name: 'lines_removed', type: 'int' }) linesRemoved!: number;
  @Column({ name: 'version', type: 'int' }) version!: number;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}
