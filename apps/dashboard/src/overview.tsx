import { api, type BuildStatusResponse, type CoordinatedService, type ExecutorView, type RunResponse } from './api';
import { age, pct, stateClass, tokens, usd } from './format';
import { useState } from 'preact/hooks';
import { usePolled } from './hooks';

/** The runs list with progress, tokens, cost and age, and the builds list. */
export function Overview() {
  const runs = usePolled(async () => {
    const list = await api.runs();
    // Cost lives on the run itself: one read per listed run (at most 50).
    const details = await Promise.all(list.runs.map((r) => api.run(r.run_id).catch(() => undefined)));
    return { list, details: new Map(details.filter((d): d is RunResponse => !!d).map((d) => [d.run_id, d])) };
  }, 5000);
  const builds = usePolled(() => api.builds(), 5000);
  const services = usePolled(() => api.coordinator(), 10_000);
  const executors = usePolled(() => api.executors(), 5000);

  return (
    <>
      <section>
        <h2>Runs {runs.data && <span class="muted">({runs.data.list.total})</span>}</h2>
        {runs.error && <p class="error">{runs.error}</p>}
        <table class="list" id="runs">
          <thead>
            <tr>
              <th>Run</th>
              <th>State</th>
              <th>Progress</th>
              <th>Current phase</th>
              <th>Tokens</th>
              <th>Cost</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {runs.data?.list.runs.map((r) => {
              const d = runs.data?.details.get(r.run_id);
              return (
                <tr key={r.run_id} data-run={r.run_id}>
                  <td>
                    <a href={`#/runs/${encodeURIComponent(r.run_id)}`}>{r.run_id}</a>
                  </td>
                  <td>
                    <span class={`badge ${stateClass(r.state)}`}>{r.state}</span>
                  </td>
                  <td>
                    <Progress value={pct(r.phases_completed, r.phases_total)} label={`${r.phases_completed}/${r.phases_total}`} />
                  </td>
                  <td>{r.current_phase_name ?? <span class="muted">–</span>}</td>
                  <td>
                    {tokens(r.tokens_used)} / {tokens(r.token_cap)}
                  </td>
                  <td>{usd(d?.budgets.cost_used_usd)}</td>
                  <td title={r.created_at}>{age(r.created_at)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {runs.data?.list.runs.length === 0 && <p class="muted">No runs yet.</p>}
      </section>
      <section>
        <h2>Builds</h2>
        {builds.error && <p class="error">{builds.error}</p>}
        <table class="list" id="builds">
          <thead>
            <tr>
              <th>Build</th>
              <th>Droplet</th>
              <th>Status</th>
              <th>Progress</th>
              <th>Step</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {builds.data?.builds.map((b) => (
              <BuildRow key={b.build_id} build={b} onChange={builds.reload} />
            ))}
          </tbody>
        </table>
        {builds.data?.builds.length === 0 && <p class="muted">No builds yet.</p>}
      </section>
      {services.data && <AssemblyLine services={services.data} />}
      {executors.data && <Executors executors={executors.data} />}
    </>
  );
}

function BuildRow({ build: b, onChange }: { build: BuildStatusResponse; onChange: () => void }) {
  const act = (f: () => Promise<unknown>) => () => void f().then(onChange, (e: Error) => alert(e.message));
  return (
    <tr data-build={b.build_id}>
      <td>{b.build_id}</td>
      <td>{b.droplet_name ?? b.droplet_id ?? '–'}</td>
      <td>
        <span class={`badge ${stateClass(b.status)}`}>{b.status}</span>
        {b.checkpoint && <span class="muted"> at {b.checkpoint}</span>}
        {b.error && <div class="error small">{b.error}</div>}
      </td>
      <td>
        <Progress value={b.progress_percent} label={`${b.progress_percent}%`} />
      </td>
      <td>{b.current_phase ?? '–'}</td>
      <td title={b.created_at}>{age(b.created_at)}</td>
      <td class="actions">
        {b.status === 'awaiting_approval' && (
          <>
            <button onClick={act(() => api.approveBuild(b.build_id, true))}>Approve</button>
            <button class="secondary" onClick={act(() => api.approveBuild(b.build_id, false))}>
              Reject
            </button>
          </>
        )}
        {['queued', 'running', 'awaiting_approval'].includes(b.status) && (
          <button class="danger" onClick={act(() => api.cancelBuild(b.build_id))}>
            Cancel
          </button>
        )}
      </td>
    </tr>
  );
}

/** A horizontal bar with a label. */
export function Progress({ value, label }: { value: number; label: string }) {
  return (
    <span class="progress" title={label}>
      <span class="bar">
        <span style={{ width: `${value}%` }} />
      </span>
      <span class="small">{label}</span>
    </span>
  );
}

const seconds = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);

/** The stages of the assembly line, in order (CONTRACT.md section 9). */
const LINE_STAGES = ['needs_spec', 'ready_for_build', 'needs_tests', 'tests_failing', 'ready_for_deploy', 'production'];

/**
 * The coordinator's assembly line: a column per stage, a card per service with its age in the
 * stage and its active run, the cycle times (median and p90 per stage across services), and
 * "assign now", which has every running coordinator make a pass at once.
 */
function AssemblyLine({ services }: { services: CoordinatedService[] }) {
  const stats = usePolled(() => api.cycleTimes(), 10_000);
  const [requested, setRequested] = useState<string | null>(null);
  const assign = () =>
    void api.assignNow().then(
      (r) => setRequested(`pass #${r.request_id} requested: running coordinators assign now`),
      (e: Error) => setRequested(`could not request a pass: ${e.message}`),
    );
  const stages = [...LINE_STAGES, ...new Set(services.map((s) => s.stage).filter((s) => !LINE_STAGES.includes(s)))];
  return (
    <section id="assembly-line">
      <h2>Assembly line</h2>
      <p>
        <button id="assign-now" onClick={assign}>
          Assign now
        </button>{' '}
        {requested && (
          <span class="small muted" id="assign-status">
            {requested}
          </span>
        )}
      </p>
      {services.length === 0 ? (
        <p class="muted">No services.</p>
      ) : (
        <div class="board" id="line" style={{ gridTemplateColumns: `repeat(${stages.length}, minmax(9rem, 1fr))` }}>
          {stages.map((stage) => (
            <div class="col-head" key={`h-${stage}`}>
              {stage.replace(/_/g, ' ')} {services.filter((s) => s.stage === stage).length}
              {stats.data?.[stage] && (
                <div class="small muted" data-cycle={stage}>
                  median {seconds(stats.data[stage].median_s)} · p90 {seconds(stats.data[stage].p90_s)}
                </div>
              )}
            </div>
          ))}
          {stages.map((stage) => (
            <div class="cell" data-stage={stage} key={`c-${stage}`}>
              {services
                .filter((s) => s.stage === stage)
                .map((s) => (
                  <div class={`card ${stage === 'production' ? 'done' : stage === 'tests_failing' ? 'failed' : 'active'}`} data-service={s.service} key={s.service}>
                    <div class="card-title" title={s.path}>
                      {s.service}
                    </div>
                    <div class="small muted">{s.stage_since ? `${age(s.stage_since)} in stage` : ''}</div>
                    <div class="small">{s.active_run_id ? <a href={`#/runs/${encodeURIComponent(s.active_run_id)}`}>{s.active_run_id}</a> : 'no active run'}</div>
                    {Object.keys(s.cycle_times).length > 0 && (
                      <div class="small muted">
                        {Object.entries(s.cycle_times)
                          .map(([st, t]) => `${st.replace(/_/g, ' ')} ${seconds(t)}`)
                          .join(' · ')}
                      </div>
                    )}
                  </div>
                ))}
            </div>
          ))}
        </div>
      )}
    </section>
  );
}

/** The executors seen through their claims and heartbeats: capabilities, status, current phase, counts. */
function Executors({ executors }: { executors: ExecutorView[] }) {
  return (
    <section>
      <h2>Executors</h2>
      {executors.length === 0 ? (
        <p class="muted">No executor has claimed yet.</p>
      ) : (
        <table class="list" id="executors">
          <thead>
            <tr>
              <th>Executor</th>
              <th>Capabilities</th>
              <th>Status</th>
              <th>Working on</th>
              <th>Completed</th>
              <th>Failed</th>
              <th>Last seen</th>
            </tr>
          </thead>
          <tbody>
            {executors.map((e) => (
              <tr key={e.executor_id} data-executor={e.executor_id}>
                <td>{e.executor_id}</td>
                <td>{e.capabilities.join(', ')}</td>
                <td>
                  <span class={`badge ${e.status === 'active' ? 'active' : 'failed'}`}>{e.status}</span>
                </td>
                <td>{e.current ? <a href={`#/runs/${encodeURIComponent(e.current.run_id)}`}>{`${e.current.run_id} / ${e.current.phase_id}`}</a> : '–'}</td>
                <td>{e.phases_completed}</td>
                <td>{e.phases_failed}</td>
                <td title={e.last_seen_at}>{age(e.last_seen_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
