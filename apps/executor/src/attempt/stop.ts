import { AttemptStoppedError } from '../lease-keeper.js';

/** Ends the attempt when its signal was aborted (lost lease, stopped run, shutdown). */
export function throwIfStopped(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof AttemptStoppedError ? signal.reason : new AttemptStoppedError('shutdown');
}
