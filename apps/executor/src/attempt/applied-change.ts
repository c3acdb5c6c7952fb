import { type ApplyPlan, type AppliedChange as UndoRecord, applyPlan, restoreChange } from '../governed-apply.js';
import { type InflightAttempt, clearInflight, markInflight } from '../inflight.js';

/** What the pipeline needs of a change written to the working copy. */
export interface WorkingChange {
  /** The change became the branch head (committed): nothing to restore any more. */
  keep(): void;
  /** Puts the working copy back byte for byte, unless kept; safe to call more than once. */
  restore(): void;
}

/**
 * A plan written to the working copy, disposable: whatever path the attempt leaves by,
 * `restore()` in a `finally` puts every byte back unless the change was committed and kept.
 * The in-flight marker is written before the first byte and cleared once the change is kept
 * or restored, so an executor killed in between has its change undone by the next holder of
 * the workspace (see inflight.ts).
 */
export class AppliedChange implements WorkingChange {
  private undo: UndoRecord | undefined;

  private constructor(
    private readonly workspace: string,
    undo: UndoRecord,
  ) {
    this.undo = undo;
  }

  /** Marks the attempt in flight, then writes `plan`. */
  static apply(workspace: string, plan: ApplyPlan, attempt: Omit<InflightAttempt, 'paths'>): AppliedChange {
    markInflight(workspace, { ...attempt, paths: plan.files.map((f) => f.path) });
    return new AppliedChange(workspace, applyPlan(workspace, plan));
  }

  keep(): void {
    this.undo = undefined;
    clearInflight(this.workspace);
  }

  restore(): void {
    if (this.undo) restoreChange(this.workspace, this.undo);
    this.undo = undefined;
    clearInflight(this.workspace);
  }
}
