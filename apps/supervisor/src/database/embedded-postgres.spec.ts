import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { embeddedPostgresPlace } from './embedded-postgres.js';

// The fallback only exists for root: PostgreSQL then runs as the unprivileged `postgres` user.
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const rootIt = asRoot ? it : it.skip;

const tmpDirs: string[] = [];

/** A fresh directory with `mode` (mkdtemp gives 0700: as root, only root can enter it). */
function scratch(mode: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'autopack-embedded-pg-'));
  chmodSync(dir, mode);
  tmpDirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('embeddedPostgresPlace', () => {
  it('keeps a directory the server can use', () => {
    const dir = path.join(scratch(0o755), '.autopack', 'pg');
    expect(embeddedPostgresPlace(dir)).toEqual({ requested: dir, dir });
  });

  rootIt('moves a directory only root can enter to a stable per-checkout place and says so in one line', () => {
    const root = scratch(0o700);
    const dir = path.join(root, '.autopack', 'pg');
    const place = embeddedPostgresPlace(dir);
    expect(place.dir).toMatch(/^\/(var\/)?tmp\/autopack-pg\/[0-9a-f]{12}$/);
    expect(place.notice).toBe(`embedded PostgreSQL: ${dir} is not reachable by the "postgres" user (${root} is not searchable by that user); using ${place.dir} instead`);
    expect(place.notice).not.toContain('\n');
    expect(embeddedPostgresPlace(`${root}/./.autopack/pg/`).dir).toBe(place.dir);
    expect(embeddedPostgresPlace(path.join(root, '.autopack', 'test-pg')).dir).not.toBe(place.dir);
    expect(existsSync(place.dir)).toBe(false); // deciding changes nothing
  });
});
