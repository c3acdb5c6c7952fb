/** What one attempt ended with (for logs and tests): the shared vocabulary of libs/contracts. */
export type { AttemptOutcome } from '@app/contracts';
