import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/** An issue seen in a phase, deduplicated by key with an occurrence count. */
@Entity({ name: 'phase_issues' })
export class PhaseIssueEntity {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ name: 'run_id', type: 'text' }) runId!: string;
  @Column({ name: 'phase_id', type: 'text' }) phaseId!: string;
  @Column({ name: 'tier_id', type: 'text' }) tierId!: string;
  @Column({ name: 'issue_key', type: 'text' }) issueKey!: string;
  @Column({ type: 'text' }) severity!: 'minor' | 'major';
  @Column({ name: 'effective_severity', type: 'text' }) effectiveSeverity!: 'minor' | 'major';
  @Column({ type: 'text' }) source!: string;
  @Column({ type: 'text' }) category!: string;
  @Column({ type: 'text', nullable: true }) description!: string | null;
  @Column({ type: 'text', nullable: true }) location!: string | null;
  @Column({ name: 'evidence_refs', type: 'jsonb' }) evidenceRefs!: string[];
  @Column({ name: 'occurrence_count', type: 'int' }) occurrenceCount!: number;
  @Column({ name: 'last_seen_attempt', type: 'int' }) lastSeenAttempt!: number;
  @Column({ type: 'text' }) status!: 'open' | 'fixed_in_phase';
  @Column({ name: 'first_seen_at', type: 'timestamptz' }) firstSeenAt!: Date;
  @Column({ name: 'last_seen_at', type: 'timestamptz' }) lastSeenAt!: Date;
}

/** A project-wide issue with its aging (counted once per run and once per tier). */
@Entity({ name: 'project_backlog' })
export class BacklogEntity {
  @PrimaryColumn({ name: 'project_id', type: 'text' }) projectId!: string;
  @PrimaryColumn({ name: 'issue_key', type: 'text' }) issueKey!: string;
  @Column({ type: 'text' }) category!: string;
  @Column({ name: 'base_severity', type: 'text' }) baseSeverity!: 'minor' | 'major';
  @Column({ name: 'effective_severity', type: 'text' }) effectiveSeverity!: 'minor' | 'major';
  @Column({ name: 'age_in_runs', type: 'int' }) ageInRuns!: number;
  @Column({ name: 'age_in_tiers', type: 'int' }) ageInTiers!: number;
  @Column({ name: 'occurrence_count', type: 'int' }) occurrenceCount!: number;
  @Column({ name: 'seen_in_runs', type: 'jsonb' }) seenInRuns!: string[];
  @Column({ name: 'seen_in_tiers', type: 'jsonb' }) seenInTiers!: string[];
  @Column({ name: 'first_seen_run_id', type: 'text' }) firstSeenRunId!: string;
  @Column({ name: 'last_seen_run_id', type: 'text' }) lastSeenRunId!: string;
  @Column({ name: 'last_seen_at', type: 'timestamptz' }) lastSeenAt!: Date;
  @Column({ type: 'text' }) status!: 'open' | 'needs_cleanup' | 'resolved';
  @Column({ name: 'resolved_by_run_id', type: 'text', nullable: true }) resolvedByRunId!: string | null;
  @Column({ name: 'resolved_at', type: 'timestamptz', nullable: true }) resolvedAt!: Date | null;
}

/** A per-project override of the strategy table. */
@Entity({ name: 'project_rulesets' })
export class RulesetEntity {
  @PrimaryColumn({ name: 'project_id', type: 'text' }) projectId!: string;
  @Column({ type: 'jsonb' }) ruleset!: Record<string, Record<string, unknown>>;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}
