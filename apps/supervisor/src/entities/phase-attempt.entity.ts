import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** One finished attempt of a phase: why it ended and what the next attempt should be told. */
@Entity({ name: 'phase_attempts' })
export class PhaseAttemptEntity {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ name: 'run_id', type: 'text' }) runId!: string;
  @Column({ name: 'phase_id', type: 'text' }) phaseId!: string;
  @Column({ type: 'int' }) attempt!: number;
  @Column({ type: 'text' }) outcome!: string;
  @Column({ type: 'text', nullable: true }) reason!: string | null;
  @Column({ type: 'text', nullable: true }) feedback!: string | null;
  @Column({ name: 'edits_hash', type: 'text', nullable: true }) editsHash!: string | null;
  @Column({ name: 'executor_id', type: 'text', nullable: true }) executorId!: string | null;
  @Column({ name: 'commit_sha', type: 'text', nullable: true }) commitSha!: string | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}
