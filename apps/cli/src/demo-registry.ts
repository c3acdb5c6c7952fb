/**
 * The demo's local service registry: where the `register` hook of a droplet build records
 * the deployed service (CONTRACT.md section 8, step 6). An HTTP server on 127.0.0.1,
 * started in-process by the demo and by tests.
 *
 * - `POST /register` `{build_id, droplet_id?, droplet_name?, deployment_url, commit_sha}`:
 *   201 `{entry}`; the same build and commit again: 200 with the entry stored first.
 * - `GET /registry`: 200 `{entries}`, oldest first.
 * - `GET /health`: 200 `{status: "ok"}`.
 */
import { randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CommitShaSchema, finishApp, jsonApp, listenLocal, optionalText, parseBody, route } from './demo-http.js';

const RegisterBodySchema = z.object({
  build_id: z.string().min(1, 'must not be empty').max(200),
  droplet_id: optionalText(200),
  droplet_name: optionalText(500),
  deployment_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2000),
  commit_sha: CommitShaSchema,
});

/** One registered service. */
export const RegistryEntrySchema = z.object({
  entry_id: z.string(),
  build_id: z.string(),
  droplet_id: z.string().nullable(),
  droplet_name: z.string().nullable(),
  deployment_url: z.string(),
  commit_sha: z.string(),
  registered_at: z.string(),
});
/** One registered service. */
export type RegistryEntry = z.infer<typeof RegistryEntrySchema>;

const RegistryFileSchema = z.object({ entries: z.array(RegistryEntrySchema) });

/** Options of {@link startDemoRegistry}. */
export interface DemoRegistryOptions {
  /** A JSON file the entries are kept in: read at start when it exists, rewritten after each new entry. */
  file?: string;
  /** Listen port on 127.0.0.1 (default 0: a free port). */
  port?: number;
  /** Where unexpected errors are written (default: stderr). */
  log?: (line: string) => void;
}

/** A running registry. */
export interface DemoRegistry {
  /** `http://127.0.0.1:<port>`; the register hook's URL is `${url}/register`. */
  url: string;
  port: number;
  /** The entries, oldest first (copies). */
  entries(): RegistryEntry[];
  close(): Promise<void>;
}

async function readEntries(file: string): Promise<RegistryEntry[]> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const parsed = RegistryFileSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${file} is not a registry file: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data.entries;
}

/** Writes the whole file next to itself and renames it into place, so a crash leaves the old or the new one. */
async function writeEntries(file: string, entries: RegistryEntry[]): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, `${JSON.stringify({ entries }, null, 2)}\n`);
  await fsp.rename(tmp, file);
}

/** Starts the registry. Throws when `file` exists but is not a registry file. */
export async function startDemoRegistry(options: DemoRegistryOptions = {}): Promise<DemoRegistry> {
  const log = options.log ?? ((line: string) => process.stderr.write(`demo registry: ${line}\n`));
  const entries: RegistryEntry[] = options.file ? await readEntries(options.file) : [];
  // Registrations are handled one at a time, so two identical requests cannot both add an entry
  // and the file is never written by two requests at once.
  let queue: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  };

  const app = jsonApp();
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/registry', (_req, res) => {
    res.json({ entries });
  });
  app.post(
    '/register',
    route(async (req, res) => {
      const body = parseBody(RegisterBodySchema, req.body);
      const { status, entry } = await oneAtATime(async () => {
        const known = entries.find((e) => e.build_id === body.build_id && e.commit_sha === body.commit_sha);
        if (known) return { status: 200, entry: known };
        const added: RegistryEntry = {
          entry_id: randomUUID(),
          build_id: body.build_id,
          droplet_id: body.droplet_id ?? null,
          droplet_name: body.droplet_name ?? null,
          deployment_url: body.deployment_url,
          commit_sha: body.commit_sha,
          registered_at: new Date().toISOString(),
        };
        // Stored before it is answered: a 201 means the entry is in the file.
        if (options.file) await writeEntries(options.file, [...entries, added]);
        entries.push(added);
        return { status: 201, entry: added };
      });
      res.status(status).json({ entry });
    }),
  );
  finishApp(app, log);

  const server = await listenLocal(app, options.port);
  return {
    url: server.url,
    port: server.port,
    entries: () => entries.map((e) => ({ ...e })),
    close: server.close,
  };
}
