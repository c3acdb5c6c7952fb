/** "3 min ago", "2 h ago": how long ago an ISO time was. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '–';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export const tokens = (n: number) => (n >= 1_000_000 ? `${(n / 1_000_000).toFixed(1)}M` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n));
export const usd = (n: number | null | undefined) => (n === null || n === undefined ? '–' : `$${n.toFixed(n < 1 ? 4 : 2)}`);
export const pct = (used: number, cap: number) => (cap > 0 ? Math.min(100, Math.round((used / cap) * 100)) : 0);
export const shortSha = (sha: string | null | undefined) => (sha ? sha.slice(0, 10) : '–');

/** A CSS class for a state: done, failed, waiting, active or idle. */
export function stateClass(state: string): string {
  const s = state.toUpperCase();
  if (s === 'DONE_SUCCESS' || s === 'COMPLETE' || s === 'COMPLETED' || s === 'SUCCEEDED') return 'done';
  if (s.startsWith('DONE_FAILED') || s === 'FAILED' || s === 'CANCELLED') return 'failed';
  if (s.includes('AWAITING') || s === 'GATE') return 'waiting';
  if (s === 'QUEUED' || s === 'PENDING' || s === 'RUN_CREATED' || s === 'SKIPPED') return 'idle';
  return 'active';
}
