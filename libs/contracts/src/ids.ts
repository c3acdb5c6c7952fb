import { z } from 'zod';

/**
 * Ids become part of git ref names (`autonomous/<run_id>`) and file names, so they are
 * restricted to a conservative alphabet: letters, digits, `_`, `-`, and single dots that
 * neither start nor end the id (no `..`, no `.lock` suffix).
 */
export const ID_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.))*$/;

/** An id as used for runs, tiers and phases. */
export const IdSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(ID_PATTERN, 'letters, digits, "_", "-" and single inner dots only')
  .refine((s) => !s.endsWith('.') && !s.toLowerCase().endsWith('.lock'), 'must not end with "." or ".lock"');

/** An executor id: printable ASCII without spaces (it is logged and stored as the lease owner). */
export const ExecutorIdSchema = z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** A capability an executor has and a phase may require (`builder`, `tester`, `devops`, ...). */
export const CapabilitySchema = z.string().min(1).max(40).regex(/^[a-z][a-z0-9_-]*$/, 'lower-case letters, digits, - and _');
/** What an executor claims with when it names no capability (CONTRACT.md section 9). */
export const DEFAULT_CAPABILITIES: readonly string[] = ['builder'];

/**
 * A project id in a query string (`?project_id=`): the id alphabet and length, without the
 * dot rules of `IdSchema` (an unknown project only has an empty backlog, nothing is named after it).
 */
export const ProjectIdQuerySchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/);

/** A git branch name for the base branch: conservative, no `..`, no leading `-`. */
export const BranchNameSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'not a safe branch name')
  .refine((s) => !s.includes('..') && !s.includes('//') && !s.endsWith('/') && !s.endsWith('.lock'), 'not a safe branch name');

/**
 * A repository-relative path as written by users in a phase scope: `/` separators,
 * no absolute paths, no `..` segments, never inside `.git`.
 */
export const RelativePathSchema = z
  .string()
  .min(1)
  .max(1000)
  .refine((p) => !p.startsWith('/') && !/^[A-Za-z]:/.test(p) && !p.includes('\\') && !p.includes('\0'), 'must be a relative path with "/"')
  .refine((p) => !p.split('/').some((seg) => seg === '..'), 'must not contain ".."')
  .refine((p) => !p.split('/').some((seg) => seg.toLowerCase() === '.git'), 'must not touch .git');

/** Path parameters of the routes under `/runs/{run_id}`. */
export const RunPathParamsSchema = z.strictObject({ run_id: IdSchema });
/** Path parameters of the routes under `/runs/{run_id}/phases/{phase_id}`. */
export const PhasePathParamsSchema = z.strictObject({ run_id: IdSchema, phase_id: IdSchema });
/** Path parameters of the routes under `/projects/{project_id}`. */
export const ProjectPathParamsSchema = z.strictObject({ project_id: IdSchema });
