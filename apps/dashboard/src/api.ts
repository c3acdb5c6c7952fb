import type { BuildListResponse, ExecutorView, IntegrationStatusResponse, ProjectBacklogResponse, RunIssueIndexResponse, RunListResponse, RunResponse, StreamedEvent } from '@app/contracts';

/** Types only: erased at build time, so no contract code (or zod) lands in the bundle. */
export type { BuildListResponse, BuildStatusResponse, ExecutorView, PhaseResponse, ProjectBacklogResponse, RunIssueIndexResponse, RunListResponse, RunResponse, StreamedEvent, TierResponse } from '@app/contracts';

/** `GET/POST/DELETE /dashboard/session`. */
export interface Session {
  key_required: boolean;
  authenticated: boolean;
}

/** One service of `GET /coordinator/services` (CONTRACT section 9), when the supervisor has the coordinator. */
export interface CoordinatedService {
  service: string;
  path: string;
  stage: string;
  stage_since: string | null;
  active_run_id: string | null;
  cycle_times: Record<string, number>;
}

/** `GET /coordinator/cycle_times`: per stage, across services. */
export type CycleTimeStats = Record<string, { count: number; median_s: number; p90_s: number }>;

/** `POST/GET /coordinator/pass`: the newest request for a coordinator pass. */
export interface PassRequest {
  request_id: number;
  requested_at: string | null;
}

/** An answer other than 2xx, with the supervisor's `{"error": {code, message}}` when there is one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Called when any call answers 401: the session cookie is gone or stale. */
let onUnauthorized: () => void = () => undefined;
export const setUnauthorizedHandler = (f: () => void) => {
  onUnauthorized = f;
};

/**
 * One JSON call to the supervisor. The browser sends the HttpOnly session cookie itself
 * (same origin); the key is never held by this code.
 */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const parsed: unknown = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/dashboard/session')) onUnauthorized();
    const message = (parsed as { error?: { message?: string } } | undefined)?.error?.message ?? res.statusText;
    throw new ApiError(res.status, message);
  }
  return parsed as T;
}

export const api = {
  session: () => call<Session>('GET', '/dashboard/session'),
  login: (key: string) => call<Session>('POST', '/dashboard/session', { key }),
  logout: () => call<Session>('DELETE', '/dashboard/session'),
  runs: () => call<RunListResponse>('GET', '/runs?limit=50'),
  run: (id: string) => call<RunResponse>('GET', `/runs/${encodeURIComponent(id)}`),
  builds: () => call<BuildListResponse>('GET', '/executor/builds'),
  executors: () => call<ExecutorView[]>('GET', '/executors'),
  issues: (id: string) => call<RunIssueIndexResponse>('GET', `/runs/${encodeURIComponent(id)}/issues/index`),
  backlog: (project: string) => call<ProjectBacklogResponse>('GET', `/project/issues/backlog?project_id=${encodeURIComponent(project)}`),
  integration: (id: string) => call<IntegrationStatusResponse>('GET', `/runs/${encodeURIComponent(id)}/integration_status`),
  /** Null when this supervisor has no coordinator route (404). */
  coordinator: () => call<CoordinatedService[]>('GET', '/coordinator/services').catch((e: unknown) => {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }),
  cycleTimes: () => call<CycleTimeStats>('GET', '/coordinator/cycle_times'),
  assignNow: () => call<PassRequest>('POST', '/coordinator/pass'),
  approve: (id: string, approved: boolean) => call<RunResponse>('POST', `/runs/${encodeURIComponent(id)}/approve`, { approved }),
  cancel: (id: string) => call<RunResponse>('POST', `/runs/${encodeURIComponent(id)}/cancel`, { reason: 'cancelled from the dashboard' }),
  retry: (id: string, phase: string) => call<unknown>('POST', `/runs/${encodeURIComponent(id)}/phases/${encodeURIComponent(phase)}/retry`),
  approveBuild: (id: string, approved: boolean) => call<unknown>('POST', `/executor/builds/${encodeURIComponent(id)}/approve`, { approved }),
  cancelBuild: (id: string) => call<unknown>('POST', `/executor/builds/${encodeURIComponent(id)}/cancel`),
};

/** The event types of a run's stream (SSE names each event by its type). */
export const RUN_EVENT_TYPES: readonly StreamedEvent['type'][] = [
  'run_created',
  'run_state',
  'run_approval',
  'tier_state',
  'phase_claimed',
  'phase_state',
  'phase_retry',
  'issue_recorded',
  'issues_resolved',
  'llm_call',
  'llm_usage',
  'build_status',
  'build_step',
];
