import { createTwoFilesPatch } from 'diff';
import type { ApplyPlan } from './governed-apply.js';

/** A unified diff of a plan (what the auditor reviews) and its line counts. */
export function describePlan(plan: ApplyPlan): { diff: string; linesAdded: number; linesRemoved: number } {
  let added = 0;
  let removed = 0;
  const parts = plan.files.map((f) => {
    const patch = createTwoFilesPatch(
      f.before === null ? '/dev/null' : `a/${f.path}`,
      f.after === null ? '/dev/null' : `b/${f.path}`,
      f.before ?? '',
      f.after ?? '',
      '',
      '',
      { context: 3 },
    );
    for (const line of patch.split('\n')) {
      if (line.startsWith('+') && !line.startsWith('+++')) added++;
      else if (line.startsWith('-') && !line.startsWith('---')) removed++;
    }
    return patch.replace(/^=+\n/, '');
  });
  return { diff: parts.join('\n'), linesAdded: added, linesRemoved: removed };
}
