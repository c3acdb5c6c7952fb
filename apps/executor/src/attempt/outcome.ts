/** What one attempt ended with (for logs and tests). */
export type AttemptOutcome = 'complete' | 'resumed' | 'builder_failed' | 'refused' | 'repeated_edits' | 'ci_failed' | 'auditor_rejected' | 'push_rejected' | 'stopped';
