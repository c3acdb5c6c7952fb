/** Milliseconds between two instants, never negative. */
export function msBetween(from: Date, to: Date): number {
  return Math.max(0, to.getTime() - from.getTime());
}
