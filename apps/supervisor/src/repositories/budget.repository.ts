import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { execSql } from './sql.js';

/** Open reservations and idempotent usage reports. */
@Injectable()
export class BudgetRepository {
  /** Sums of open reservations for a run, one of its phases and one of its tiers. */
  async reserved(em: EntityManager, runId: string, phaseId: string, tierId: string): Promise<{ run: number; phase: number; tier: number; cost: number }> {
    const { rows } = await execSql<{ run: string; phase: string; tier: string; cost: string }>(
      em,
      `SELECT COALESCE(sum(tokens),0) AS run,
              COALESCE(sum(tokens) FILTER (WHERE phase_id = $2),0) AS phase,
              COALESCE(sum(tokens) FILTER (WHERE tier_id = $3),0) AS tier,
              COALESCE(sum(cost_usd),0) AS cost
         FROM budget_reservations WHERE run_id = $1`,
      [runId, phaseId, tierId],
    );
    const r = rows[0];
    return { run: Number(r.run), phase: Number(r.phase), tier: Number(r.tier), cost: Number(r.cost) };
  }

  /** Opens a reservation. */
  async reserve(em: EntityManager, r: { id: string; runId: string; phaseId: string; tierId: string; tokens: number; costUsd: number }): Promise<void> {
    await execSql(em, `INSERT INTO budget_reservations (id, run_id, phase_id, tier_id, tokens, cost_usd) VALUES ($1,$2,$3,$4,$5,$6)`, [
      r.id,
      r.runId,
      r.phaseId,
      r.tierId,
      r.tokens,
      r.costUsd,
    ]);
  }

  /** Settles (removes) one reservation. */
  async settle(em: EntityManager, runId: string, reservationId: string): Promise<void> {
    await execSql(em, `DELETE FROM budget_reservations WHERE run_id = $1 AND id = $2`, [runId, reservationId]);
  }

  /** Releases every reservation of a phase (its attempt ended). */
  async releasePhase(em: EntityManager, runId: string, phaseId: string): Promise<void> {
    await execSql(em, `DELETE FROM budget_reservations WHERE run_id = $1 AND phase_id = $2`, [runId, phaseId]);
  }

  /** Records a usage report id; false when it was already recorded (a retried request). */
  async claimUsageReport(em: EntityManager, reportId: string, runId: string, phaseId: string, tokens: number, costUsd: number): Promise<boolean> {
    const { rows } = await execSql(
      em,
      `INSERT INTO usage_reports (report_id, run_id, phase_id, tokens, cost_usd) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (report_id) DO NOTHING RETURNING report_id`,
      [reportId, runId, phaseId, tokens, costUsd],
    );
    return rows.length === 1;
  }
}
