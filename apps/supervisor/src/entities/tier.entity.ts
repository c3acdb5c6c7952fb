import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { Cleanliness, TierState } from '@app/contracts';
import { numericTransformer } from './run.entity.js';

/** A tier of a run. */
@Entity({ name: 'tiers' })
export class TierEntity {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ name: 'run_id', type: 'text' }) runId!: string;
  @Column({ name: 'tier_id', type: 'text' }) tierId!: string;
  @Column({ name: 'tier_index', type: 'int' }) tierIndex!: number;
  @Column({ type: 'text' }) name!: string;
  @Column({ type: 'text', nullable: true }) description!: string | null;
  @Column({ type: 'text' }) state!: TierState;
  @Column({ type: 'text' }) cleanliness!: Cleanliness;
  @Column({ name: 'minor_issues_count', type: 'int' }) minorIssuesCount!: number;
  @Column({ name: 'major_issues_count', type: 'int' }) majorIssuesCount!: number;
  @Column({ name: 'tokens_used', type: 'bigint', transformer: numericTransformer }) tokensUsed!: number;
  @Column({ name: 'ci_runs_used', type: 'int' }) ciRunsUsed!: number;
  @Column({ name: 'version', type: 'int' }) version!: number;
}
