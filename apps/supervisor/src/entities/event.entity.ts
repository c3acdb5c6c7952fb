import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** The durable audit trail: every state change and every reported LLM usage. */
@Entity({ name: 'events' })
export class EventEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id!: string;
  @Column({ name: 'run_id', type: 'text' }) runId!: string;
  @Column({ name: 'phase_id', type: 'text', nullable: true }) phaseId!: string | null;
  @Column({ type: 'text' }) type!: string;
  @Column({ type: 'jsonb' }) payload!: Record<string, unknown>;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}
