import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { discardPaths } from '@app/git';

/** What an attempt is about to write, recorded before it writes. */
export interface InflightAttempt {
  runId: string;
  phaseId: string;
  attempt: number;
  paths: string[];
}

/**
 * The in-flight marker lives inside `.git/` (written by the executor, never by a model), so it
 * is not part of the working tree. If the executor dies between applying an attempt and
 * committing or restoring it, the next start finds the marker and puts those paths back to
 * the branch head, instead of refusing a workspace it dirtied itself.
 */
function markerPath(workspace: string): string {
  return path.join(workspace, '.git', 'autopack', 'inflight.json');
}

/** Records an attempt's paths before they are written. */
export function markInflight(workspace: string, a: InflightAttempt): void {
  const file = markerPath(workspace);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(a));
}

/** Clears the marker once the attempt was committed or restored. */
export function clearInflight(workspace: string): void {
  rmSync(markerPath(workspace), { force: true });
}

/** Restores the paths of an attempt a dead executor left behind; returns it, or undefined. */
export async function recoverInflight(workspace: string): Promise<InflightAttempt | undefined> {
  const file = markerPath(workspace);
  if (!existsSync(file)) return undefined;
  let a: InflightAttempt;
  try {
    a = JSON.parse(readFileSync(file, 'utf8')) as InflightAttempt;
  } catch {
    rmSync(file, { force: true });
    return undefined;
  }
  if (Array.isArray(a.paths) && a.paths.length) await discardPaths(workspace, a.paths);
  rmSync(file, { force: true });
  return a;
}
