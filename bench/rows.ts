/** What every benchmark section returns: one printed row per measurement, with its baseline. */
export interface BenchRow {
  name: string;
  baseline: string;
  measured: string;
  /** measured / baseline in the direction stated by `meaning` (e.g. "x of raw SQL", "x native"). */
  ratio: number;
  meaning: string;
}

/** Options every section receives from `npm run bench [-- --quick]`. */
export interface BenchOptions {
  /** Fewer samples and smaller sizes, so the whole bench runs in under 2 minutes. */
  quick: boolean;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The p-th percentile (0..100) by nearest rank. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const fmtMs = (ms: number): string => `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
