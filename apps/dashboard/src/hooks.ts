import { useEffect, useRef, useState } from 'preact/hooks';

/** Loads `load()` now and every `everyMs` (and when `deps` change); keeps the last good value. */
export function usePolled<T>(load: () => Promise<T>, everyMs: number, deps: unknown[] = []): { data: T | undefined; error: string | null; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let live = true;
    loadRef
      .current()
      .then((d) => live && (setData(d), setError(null)))
      .catch((e: Error) => live && setError(e.message));
    const t = setTimeout(() => setTick((n) => n + 1), everyMs);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [tick, ...deps]);
  return { data, error, reload: () => setTick((n) => n + 1) };
}
