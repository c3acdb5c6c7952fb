import { Fragment } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  api,
  RUN_EVENT_TYPES,
  type PhaseResponse,
  type ProjectBacklogResponse,
  type RunIssueIndexResponse,
  type RunResponse,
  type StreamedEvent,
} from './api';
import type { IntegrationStatusResponse } from '@app/contracts';
import { age, pct, shortSha, stateClass, tokens, usd } from './format';

/** The board's columns: phase states by stage. */
const STAGES: { title: string; states: PhaseResponse['state'][] }[] = [
  { title: 'Queued', states: ['QUEUED'] },
  { title: 'Executing', states: ['EXECUTING'] },
  { title: 'CI', states: ['CI_RUNNING'] },
  { title: 'Review', states: ['GATE'] },
  { title: 'Complete', states: ['COMPLETE'] },
  { title: 'Failed', states: ['FAILED', 'SKIPPED'] },
];

const TERMINAL = ['DONE_SUCCESS', 'DONE_FAILED_BUDGET_EXHAUSTED', 'DONE_FAILED_POLICY_VIOLATION', 'DONE_FAILED_REQUIRES_HUMAN_REVIEW', 'DONE_FAILED_ENVIRONMENT', 'CANCELLED'];

/** One attempt of a phase, put together from the run's events. */
interface Attempt {
  attempt: number;
  executor?: string;
  claimedAt?: string;
  outcome?: string;
  reason?: string;
}

/** One review of a phase: what the auditor decided, read from the phase leaving review (GATE). */
interface Verdict {
  attempt?: number;
  verdict: 'approve' | 'revise' | 'escalate' | string;
  reason?: string;
  at: string;
}

function attemptsOf(events: StreamedEvent[], phaseId: string): Attempt[] {
  const byNumber = new Map<number, Attempt>();
  for (const e of events) {
    if (e.phase_id !== phaseId) continue;
    if (e.type === 'phase_claimed') byNumber.set(e.payload.attempt, { attempt: e.payload.attempt, executor: e.payload.executor_id, claimedAt: e.created_at });
    if (e.type === 'phase_state' && e.payload.attempt !== undefined && (e.payload.outcome || e.payload.reason)) {
      const a = byNumber.get(e.payload.attempt) ?? { attempt: e.payload.attempt };
      a.outcome = e.payload.outcome ?? e.payload.to.toLowerCase();
      a.reason = e.payload.reason ?? a.reason;
      byNumber.set(e.payload.attempt, a);
    }
  }
  return [...byNumber.values()].sort((a, b) => a.attempt - b.attempt);
}

function verdictsOf(events: StreamedEvent[], phaseId: string): Verdict[] {
  return events.flatMap((e): Verdict[] => {
    if (e.phase_id !== phaseId || e.type !== 'phase_state' || e.payload.from !== 'GATE' || e.payload.to === 'GATE') return [];
    const reason = e.payload.reason;
    const verdict = ['COMPLETE', 'CI_RUNNING'].includes(e.payload.to) ? 'approve' : reason === 'auditor requested changes' ? 'revise' : reason === 'auditor escalated to a human' ? 'escalate' : e.payload.to.toLowerCase();
    return [{ attempt: e.payload.attempt, verdict, reason, at: e.created_at }];
  });
}

/** A run: budgets, tiers and phases by stage, attempts and verdicts, commits, issues and backlog, live. */
export function RunPage({ runId }: { runId: string }) {
  const [run, setRun] = useState<RunResponse>();
  const [issues, setIssues] = useState<RunIssueIndexResponse>();
  const [backlog, setBacklog] = useState<ProjectBacklogResponse>();
  const [integration, setIntegration] = useState<IntegrationStatusResponse>();
  const [events, setEvents] = useState<StreamedEvent[]>([]);
  const [live, setLive] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);

  const latest = useRef(0);
  /** Reloads the run and what hangs off it; an answer overtaken by a later request is dropped (never shows older state). */
  const refresh = () => {
    const n = ++latest.current;
    const fresh = <T,>(set: (v: T) => void) => (v: T) => n === latest.current && set(v);
    api.run(runId).then(
      fresh((r: RunResponse) => {
        setRun(r);
        setError(null);
        api.backlog(r.project_id).then(fresh(setBacklog), () => undefined);
      }),
      (e: Error) => setError(e.message),
    );
    api.issues(runId).then(fresh(setIssues), () => undefined);
    api.integration(runId).then(fresh(setIntegration), () => undefined);
  };

  useEffect(() => {
    setEvents([]);
    refresh();
    // Cookies travel with EventSource (same origin), so the session covers the stream too.
    const es = new EventSource(`/runs/${encodeURIComponent(runId)}/events`);
    const seen = new Set<number>();
    const on = (m: MessageEvent<string>) => {
      const e = JSON.parse(m.data) as StreamedEvent;
      if (seen.has(e.id)) return;
      seen.add(e.id);
      setEvents((list) => [...list, e]);
      clearTimeout(timer.current);
      timer.current = setTimeout(refresh, 150);
    };
    for (const t of RUN_EVENT_TYPES) es.addEventListener(t, on);
    es.onopen = () => setLive(true);
    es.onerror = () => setLive(false);
    return () => {
      es.close();
      clearTimeout(timer.current);
    };
  }, [runId]);

  const act = (f: () => Promise<unknown>) => () => void f().then(refresh, (e: Error) => setError(e.message));

  if (!run) return error ? <p class="error">{error}</p> : <p class="muted">Loading {runId}…</p>;
  const b = run.budgets;
  const terminal = TERMINAL.includes(run.state);
  return (
    <>
      <section class="run-head">
        <h1>
          {run.run_id} <span class={`badge ${stateClass(run.state)}`} id="run-state">{run.state}</span>
          <span class={`live ${live ? 'on' : ''}`} title="live updates from the event stream">{live ? '● live' : '○ offline'}</span>
        </h1>
        <p class="muted">
          project {run.project_id} · {run.safety_profile} · approval {run.approval_mode} ({run.approval_state}) · created {age(run.created_at)}
          {run.failure_reason && <span class="error"> · {run.failure_reason}</span>}
        </p>
        <div class="actions">
          {run.state === 'AWAITING_APPROVAL' && (
            <>
              <button id="approve" onClick={act(() => api.approve(run.run_id, true))}>Approve</button>
              <button class="secondary" onClick={act(() => api.approve(run.run_id, false))}>Reject</button>
            </>
          )}
          {!terminal && <button class="danger" id="cancel" onClick={act(() => confirm(`Cancel ${run.run_id}?`) ? api.cancel(run.run_id) : Promise.resolve())}>Cancel run</button>}
        </div>
        {error && <p class="error">{error}</p>}
      </section>

      <section class="gauges">
        <Gauge label="Tokens" used={b.tokens_used} cap={b.token_cap} text={`${tokens(b.tokens_used)} / ${tokens(b.token_cap)}`} />
        <Gauge label="Cost" used={b.cost_used_usd} cap={b.cost_cap_usd ?? 0} text={`${usd(b.cost_used_usd)} / ${b.cost_cap_usd === null ? 'no cap' : usd(b.cost_cap_usd)}`} />
        <Gauge label="Phases" used={b.phases} cap={b.max_phases} text={`${b.phases} / ${b.max_phases}`} />
        <Gauge label="Minor issues" used={b.minor_issues_count} cap={b.max_minor_issues_total} text={`${b.minor_issues_count} / ${b.max_minor_issues_total}`} />
        <Gauge label="Time" used={b.elapsed_minutes} cap={b.max_duration_minutes} text={`${Math.round(b.elapsed_minutes)} / ${b.max_duration_minutes} min`} />
        <div class="gauge">
          <div class="small muted">CI runs</div>
          <div>{b.ci_runs_used}</div>
        </div>
      </section>

      <section>
        <h2>Tiers and phases</h2>
        <div class="board" id="board" style={{ gridTemplateColumns: `10rem repeat(${STAGES.length}, minmax(9rem, 1fr))` }}>
          <div />
          {STAGES.map((s) => (
            <div class="col-head" key={s.title}>
              {s.title} <span class="muted">{run.phases.filter((p) => s.states.includes(p.state)).length}</span>
            </div>
          ))}
          {run.tiers.map((t) => (
            <Fragment key={t.tier_id}>
              <div class="tier">
                <strong>{t.name}</strong>
                <div class="small">
                  <span class={`badge ${stateClass(t.state)}`}>{t.state}</span> {t.cleanliness}
                </div>
              </div>
              {STAGES.map((s) => (
                <div class="cell" data-stage={s.title.toLowerCase()} key={`${t.tier_id}-${s.title}`}>
                  {t.phases
                    .filter((p) => s.states.includes(p.state))
                    .map((p) => (
                      <PhaseCard key={p.phase_id} phase={p} events={events} onRetry={act(() => api.retry(run.run_id, p.phase_id))} />
                    ))}
                </div>
              ))}
            </Fragment>
          ))}
        </div>
      </section>

      <section>
        <h2>Commits</h2>
        <p>
          Integration branch <code>{integration?.branch ?? run.integration_branch}</code> on <code>{run.base_branch}</code>:{' '}
          {integration ? `${integration.commits_ahead_of_base} commit(s) ahead, head ${shortSha(integration.current_commit)}` : '–'}
        </p>
        <ul class="commits">
          {run.phases
            .filter((p) => p.commit_sha)
            .map((p) => (
              <li key={p.phase_id}>
                <code>{shortSha(p.commit_sha)}</code> {p.name} <span class="muted small">(+{p.lines_added} −{p.lines_removed}, {p.files_changed.length} files)</span>
              </li>
            ))}
        </ul>
      </section>

      <section class="two">
        <div>
          <h2>Issue index</h2>
          <IssueTable rows={Object.entries(issues?.issues_by_key ?? {}).map(([k, i]) => [k, i.effective_severity, i.category, String(i.occurrence_count), i.status])} head={['Issue', 'Severity', 'Category', 'Seen', 'Status']} />
        </div>
        <div>
          <h2>Project backlog</h2>
          <IssueTable rows={Object.entries(backlog?.issues_by_key ?? {}).map(([k, i]) => [k, i.effective_severity, i.category, `${i.age_in_runs} runs`, String(i.occurrence_count)])} head={['Issue', 'Severity', 'Category', 'Age', 'Seen']} />
        </div>
      </section>

      <section>
        <h2>Events</h2>
        <ol class="events" id="events">
          {events.slice(-40).reverse().map((e) => (
            <li key={e.id}>
              <span class="muted small">{new Date(e.created_at).toLocaleTimeString()}</span> <code>{e.type}</code> {e.phase_id && <strong>{e.phase_id}</strong>} {describe(e)}
            </li>
          ))}
        </ol>
      </section>
    </>
  );
}

function describe(e: StreamedEvent): string {
  switch (e.type) {
    case 'phase_state':
    case 'run_state':
      return `${e.payload.from} → ${e.payload.to}${e.payload.reason ? ` (${e.payload.reason})` : ''}`;
    case 'tier_state':
      return `${e.payload.tier_id}: ${e.payload.from} → ${e.payload.to}`;
    case 'phase_claimed':
      return `attempt ${e.payload.attempt} by ${e.payload.executor_id}`;
    case 'run_approval':
      return e.payload.approved ? 'approved' : 'rejected';
    case 'issue_recorded':
      return `${e.payload.issue_key} (${e.payload.effective_severity})`;
    case 'llm_usage':
      return `${e.payload.role}: ${e.payload.tokens} tokens`;
    default:
      return '';
  }
}

function PhaseCard({ phase: p, events, onRetry }: { phase: PhaseResponse; events: StreamedEvent[]; onRetry: () => void }) {
  const attempts = attemptsOf(events, p.phase_id);
  const verdicts = verdictsOf(events, p.phase_id);
  return (
    <div class={`card ${stateClass(p.state)}`} data-phase={p.phase_id} data-state={p.state}>
      <div class="card-title">{p.name}</div>
      <div class="small muted">
        {p.phase_id} · attempts {p.attempts_used}/{p.max_attempts} · {tokens(p.tokens_used)} tok
      </div>
      {p.lease_owner && <div class="small">leased by {p.lease_owner}</div>}
      {p.requires.length > 0 && <div class="small muted">requires {p.requires.join(', ')}</div>}
      {p.waiting_for_capabilities && (
        <div class="small error" data-waiting-for={p.waiting_for_capabilities.join(',')}>
          waiting for an executor with {p.waiting_for_capabilities.join(', ')}
        </div>
      )}
      {p.commit_sha && (
        <div class="small">
          commit <code>{shortSha(p.commit_sha)}</code>
        </div>
      )}
      {p.quality_level && <div class="small">quality {p.quality_level}</div>}
      {p.last_failure_reason && <div class="small error">{p.last_failure_reason}</div>}
      {attempts.length > 0 && (
        <details>
          <summary class="small">{attempts.length} attempt(s)</summary>
          <ul class="small">
            {attempts.map((a) => (
              <li key={a.attempt}>
                #{a.attempt} {a.executor && `by ${a.executor}`} {a.outcome && <strong>{a.outcome}</strong>} {a.reason && `: ${a.reason}`}
              </li>
            ))}
          </ul>
        </details>
      )}
      {verdicts.length > 0 && (
        <div class="small">
          auditor:{' '}
          {verdicts.map((v, i) => (
            <span key={i} class={`badge ${v.verdict === 'approve' ? 'done' : 'failed'}`} title={v.reason}>
              {v.verdict}
            </span>
          ))}
        </div>
      )}
      {p.state === 'FAILED' && (
        <button class="small-btn" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

function Gauge({ label, used, cap, text }: { label: string; used: number; cap: number; text: string }) {
  const v = pct(used, cap);
  return (
    <div class="gauge">
      <div class="small muted">{label}</div>
      <div class="bar">
        <span class={v >= 90 ? 'hot' : v >= 70 ? 'warm' : ''} style={{ width: `${v}%` }} />
      </div>
      <div class="small">{text}</div>
    </div>
  );
}

function IssueTable({ head, rows }: { head: string[]; rows: string[][] }) {
  if (rows.length === 0) return <p class="muted">None.</p>;
  return (
    <table class="list">
      <thead>
        <tr>
          {head.map((h) => (
            <th key={h}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r[0]}>
            {r.map((c, i) => (
              <td key={i}>{i === 0 ? <code>{c}</code> : c}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
