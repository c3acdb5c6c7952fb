import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { branchLog } from '@app/git';
import type { LlmScriptInput } from '@app/testing';

/** Numbers of the reliability suite, printed at the end of the run by the summary reporter. */
export const RESULTS_FILE = path.resolve('.autopack/reliability-results.json');

/** Records a scenario's numbers (merged into RESULTS_FILE). */
export function recordReliability(scenario: string, numbers: Record<string, number | string | boolean>): void {
  mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  const all = existsSync(RESULTS_FILE) ? (JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as Record<string, unknown>) : {};
  all[scenario] = numbers;
  writeFileSync(RESULTS_FILE, JSON.stringify(all, null, 2));
}

/** A deterministic PRNG (mulberry32), so a failing chaos run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A one-tier run of `n` phases, each creating its own notes file (phase ids `<prefix>-pNN`). */
export function notesPlan(runId: string, n: number, run: Record<string, unknown> = {}) {
  return {
    run: { run_id: runId, max_phases: n, ...run },
    tiers: [{ tier_id: 't1', tier_index: 0, name: 'Notes' }],
    phases: Array.from({ length: n }, (_, i) => {
      const id = `${runId}-p${String(i + 1).padStart(2, '0')}`;
      return {
        phase_id: id,
        phase_index: i,
        tier_id: 't1',
        name: `Note ${i + 1}`,
        description: `Write notes/${id}.md`,
        task_category: 'feature_scaffolding',
        complexity: 'low',
        scope: { paths: [`notes/${id}.md`] },
        ci: { command: `node -e "require('fs').accessSync('notes/${id}.md')"`, timeout_s: 30 },
      };
    }),
  };
}

/** Scripted replies for notesPlan runs: each phase's builder reply may be used many times (retries after kills). */
export function notesScript(runIds: string[], n: number, usage = { input_tokens: 500, output_tokens: 50 }): LlmScriptInput {
  const replies: LlmScriptInput['replies'] = [];
  for (const runId of runIds) {
    for (let i = 1; i <= n; i++) {
      const id = `${runId}-p${String(i).padStart(2, '0')}`;
      replies.push({
        tool: 'submit_changes',
        match: `# Phase ${id}:`,
        arguments: { summary: `Notes for ${id}`, edits: [{ path: `notes/${id}.md`, action: 'create', content: `# ${id}\n\nWritten by Autopack.\n` }] },
        usage,
        times: 50,
      });
    }
  }
  replies.push({ tool: 'submit_review', arguments: { approved: true, summary: 'fine', confidence: 'high', issues: [] }, usage, times: 100_000 });
  return { replies };
}

/** Phase commits on a run's integration branch, counted per phase. */
export async function commitsByPhase(repo: string, runId: string): Promise<Map<string, number>> {
  const log = await branchLog(repo, `autonomous/${runId}`, { depth: 1000 });
  const counts = new Map<string, number>();
  for (const c of log.filter((x) => x.trailers['Autopack-Run'] === runId)) counts.set(c.trailers['Autopack-Phase'], (counts.get(c.trailers['Autopack-Phase']) ?? 0) + 1);
  return counts;
}

/**
 * Double claims from the audit trail: a `phase_claimed` event while the phase is still
 * leased (no attempt-ending state change since the previous claim).
 */
export function countDoubleClaims(events: { phase_id: string | null; type: string; payload: { to?: string } }[]): number {
  const leased = new Set<string>();
  let doubles = 0;
  for (const e of events) {
    if (!e.phase_id) continue;
    if (e.type === 'phase_claimed') {
      if (leased.has(e.phase_id)) doubles++;
      leased.add(e.phase_id);
    } else if (e.type === 'phase_state' && ['QUEUED', 'FAILED', 'COMPLETE', 'SKIPPED'].includes(e.payload.to ?? '')) {
      leased.delete(e.phase_id);
    }
  }
  return doubles;
}
