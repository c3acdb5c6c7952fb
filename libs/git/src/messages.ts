/**
 * Pure helpers for the names and messages the contract pins (CONTRACT.md section 5):
 * the integration branch `autonomous/<run_id>` and the commit message
 * `[Autopack] <phase_id>: <summary>` with `Autopack-*` trailers.
 */
import { GitError } from './errors.js';

/** Trailer naming the run a commit belongs to. */
export const TRAILER_RUN = 'Autopack-Run';
/** Trailer naming the phase a commit completes. */
export const TRAILER_PHASE = 'Autopack-Phase';
/** Trailer holding the attempt number that produced the commit. */
export const TRAILER_ATTEMPT = 'Autopack-Attempt';

/** Longest summary kept in a commit subject; longer ones are cut. */
export const MAX_SUMMARY_LENGTH = 200;
/** Subject text used when the Builder's summary is empty. */
export const DEFAULT_SUMMARY = 'phase complete';

/** ASCII control characters, DEL and space: never valid in a ref name or a subject line. */
function isControlOrSpace(ch: string): boolean {
  const code = ch.charCodeAt(0);
  return code <= 0x20 || code === 0x7f;
}

/**
 * Throws INVALID_ARGUMENT unless `name` is usable as one component of a branch name.
 *
 * Mirrors `git check-ref-format` for a single component, plus no `/`: run ids also appear
 * as URL path segments, and a bad name must fail here with a clear code rather than deep
 * inside ref writing.
 */
export function assertRefComponent(name: string, what: string): void {
  const problem =
    typeof name !== 'string' || name.length === 0
      ? 'is empty'
      : Array.from(name).some(isControlOrSpace) || /[~^:?*[\\/]/.test(name)
        ? 'contains a space, control character or one of ~^:?*[\\/'
        : name.startsWith('.') || name.startsWith('-')
          ? 'starts with "." or "-"'
          : name.endsWith('.') || name.endsWith('.lock')
            ? 'ends with "." or ".lock"'
            : name.includes('..') || name.includes('@{') || name === '@'
              ? 'contains "..", "@{" or is "@"'
              : null;
  if (problem !== null) {
    throw new GitError('INVALID_ARGUMENT', `Invalid ${what} ${JSON.stringify(name)}: ${problem}`, {
      [what.replace(/\s+/g, '_')]: name,
      reason: problem,
    });
  }
}

/** The integration branch of a run: `autonomous/<runId>`. Throws INVALID_ARGUMENT for an unusable id. */
export function integrationBranchName(runId: string): string {
  assertRefComponent(runId, 'run id');
  return `autonomous/${runId}`;
}

/** Inputs of {@link formatCommitMessage}. */
export interface CommitMessageInput {
  phaseId: string;
  summary: string;
  runId: string;
  attempt: number;
}

/**
 * Cuts a Builder summary to a single subject line: first non-blank line, trimmed, at most
 * {@link MAX_SUMMARY_LENGTH} characters, never empty.
 */
export function summaryLine(summary: string | null | undefined): string {
  const firstLine =
    String(summary ?? '')
      .split(/\r\n|\r|\n/)
      .map((line) => Array.from(line, (ch) => (isControlOrSpace(ch) ? ' ' : ch)).join('').trim())
      .find((line) => line.length > 0) ?? '';
  // Cut by code points so a surrogate pair is never split into invalid UTF-16.
  const cut = Array.from(firstLine).slice(0, MAX_SUMMARY_LENGTH).join('').trimEnd();
  return cut.length > 0 ? cut : DEFAULT_SUMMARY;
}

/** A trailer value must fit on one line, or it would break the trailer block. */
function assertSingleLine(value: string, what: string): void {
  if (typeof value !== 'string' || value.trim().length === 0 || /[\r\n]/.test(value)) {
    throw new GitError('INVALID_ARGUMENT', `Invalid ${what} ${JSON.stringify(value)}: must be one non-empty line`, {
      [what.replace(/\s+/g, '_')]: value,
    });
  }
}

/**
 * The contract's commit message:
 *
 * ```
 * [Autopack] <phase_id>: <summary>
 *
 * Autopack-Run: <run_id>
 * Autopack-Phase: <phase_id>
 * Autopack-Attempt: <n>
 * ```
 *
 * ending with a newline. The summary goes through {@link summaryLine}.
 */
export function formatCommitMessage({ phaseId, summary, runId, attempt }: CommitMessageInput): string {
  assertSingleLine(phaseId, 'phase id');
  assertSingleLine(runId, 'run id');
  if (!Number.isSafeInteger(attempt) || attempt < 0) {
    throw new GitError('INVALID_ARGUMENT', `Invalid attempt ${String(attempt)}: must be a non-negative integer`, {
      attempt,
    });
  }
  const phase = phaseId.trim();
  return (
    `[Autopack] ${phase}: ${summaryLine(summary)}\n` +
    '\n' +
    `${TRAILER_RUN}: ${runId.trim()}\n` +
    `${TRAILER_PHASE}: ${phase}\n` +
    `${TRAILER_ATTEMPT}: ${attempt}\n`
  );
}

/**
 * The trailers (`Key: value` lines) of the last paragraph of a commit message.
 *
 * Like git, the last paragraph only counts as a trailer block when it is not the subject
 * and every line in it is a trailer or an indented continuation of one; otherwise the
 * result is empty. The first occurrence of a repeated key wins.
 */
export function parseTrailers(message: string): Record<string, string> {
  const paragraphs = String(message ?? '')
    .replace(/\r\n?/g, '\n')
    .trim()
    .split(/\n(?:[ \t]*\n)+/);
  if (paragraphs.length < 2) return {};
  const lines = paragraphs[paragraphs.length - 1].split('\n');
  // A Map, not an object literal, so keys such as "constructor" are not mistaken for repeats.
  const trailers = new Map<string, string>();
  // Key that receives continuation lines; '' while skipping a repeated key's continuations.
  let current: string | null = null;
  for (const line of lines) {
    const match = /^([A-Za-z0-9][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$/.exec(line);
    if (match) {
      if (trailers.has(match[1])) {
        current = '';
      } else {
        trailers.set(match[1], match[2].trim());
        current = match[1];
      }
    } else if (/^[ \t]+\S/.test(line) && current !== null) {
      if (current !== '') trailers.set(current, `${trailers.get(current)} ${line.trim()}`);
    } else {
      return {};
    }
  }
  return Object.fromEntries(trailers);
}
