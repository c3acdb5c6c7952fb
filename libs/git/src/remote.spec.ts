import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type GitHttpServer, startGitHttpServer } from '../../../test/support/git-http-server.js';
import {
  SYNC_REMOTE,
  branchLog,
  commitChanges,
  currentBranch,
  fetchBranch,
  formatCommitMessage,
  headCommit,
  pushBranch,
  redactUrl,
  resetBranchToRemote,
  worktreeChanges,
} from './index.js';
import { gitErrorOf as errorOf } from '../../../test/support/git-witness.js';

const author = { name: 'Autopack Test', email: 'test@autopack.invalid' };
const BRANCH = 'autonomous/run-1';
const FILES = { 'README.md': '# Sample\n', 'src/app.ts': 'export const answer = 42;\n' };

let server: GitHttpServer;
let tmp: string;
let seq = 0;

beforeAll(async () => {
  server = await startGitHttpServer();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autopack-remote-'));
});
afterAll(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
afterEach(() => {
  server.intercept = undefined;
});

/** A fresh remote repository and a workspace cloned from it. */
function setup(): { repo: string; ws: string; url: string } {
  const repo = `repo${++seq}`;
  server.createRepository(repo, FILES);
  const ws = path.join(tmp, `ws${seq}`);
  server.clone(repo, ws);
  return { repo, ws, url: server.url(repo) };
}

/** Commits `files` on the checked-out `branch` of a workspace with the façade, as the executor does. */
async function commitFiles(ws: string, branch: string, files: Record<string, string>, phaseId = 'p1'): Promise<string> {
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(ws, p)), { recursive: true });
    fs.writeFileSync(path.join(ws, p), content);
  }
  return commitChanges(ws, { branch, written: Object.keys(files), deleted: [], message: formatCommitMessage({ phaseId, summary: 'work', runId: 'run-1', attempt: 1 }), author });
}

/** Checks out a new local `branch` at the current HEAD. */
async function startBranch(ws: string, branch: string): Promise<void> {
  await resetBranchToRemote(ws, { branch, commit: await headCommit(ws) });
}

describe('fetchBranch', () => {
  it('returns the remote head with its objects, or null when the remote lacks the branch', async () => {
    const { repo, ws, url } = setup();
    expect(await fetchBranch(ws, { url, branch: BRANCH })).toBeNull();

    const theirs = server.commit(repo, { branch: BRANCH, from: 'main', files: { 'src/new.ts': 'export const n = 1;\n' }, message: 'theirs' });
    expect(await fetchBranch(ws, { url, branch: BRANCH })).toBe(theirs);
    expect(await headCommit(ws, `refs/remotes/${SYNC_REMOTE}/${BRANCH}`)).toBe(theirs);
    expect((await branchLog(ws, `refs/remotes/${SYNC_REMOTE}/${BRANCH}`)).map((c) => c.message.trim())).toEqual(['theirs', 'init']);
    // Nothing local moved.
    expect(await currentBranch(ws)).toBe('main');
  });

  it('returns null for a repository without any branch', async () => {
    const repo = `empty${++seq}`;
    server.createRepository(repo, {});
    server.git(repo, 'update-ref', '-d', 'refs/heads/main');
    const { ws } = setup();
    expect(await fetchBranch(ws, { url: server.url(repo), branch: 'main' })).toBeNull();
  });

  it('fetches from a remote whose HEAD has no commit (only other branches), storing the objects the ref names', async () => {
    const repo = `unborn-head${++seq}`;
    server.createRepository(repo, FILES);
    const theirs = server.commit(repo, { branch: BRANCH, from: 'main', files: { 'src/new.ts': 'export const n = 1;\n' }, message: 'theirs' });
    server.git(repo, 'update-ref', '-d', 'refs/heads/main');
    const { ws } = setup();
    expect(await fetchBranch(ws, { url: server.url(repo), branch: BRANCH })).toBe(theirs);
    expect((await branchLog(ws, `refs/remotes/${SYNC_REMOTE}/${BRANCH}`)).map((c) => c.message.trim())).toEqual(['theirs', 'init']);
    expect(await fetchBranch(ws, { url: server.url(repo), branch: 'main' })).toBeNull();
    const fsck = spawnSync('git', ['-c', 'safe.directory=*', 'fsck', '--strict'], { cwd: ws, encoding: 'utf8' });
    expect(fsck.stderr).toBe('');
    expect(fsck.status).toBe(0);
  });
});

describe('pushBranch', () => {
  it('creates and fast-forwards the remote branch; the bare repository passes git fsck --strict', async () => {
    const { repo, ws, url } = setup();
    await startBranch(ws, BRANCH);
    const first = await commitFiles(ws, BRANCH, { 'src/a.ts': 'export const a = 1;\n' });
    expect(await pushBranch(ws, { url, branch: BRANCH })).toBe(first);
    const second = await commitFiles(ws, BRANCH, { 'src/b.ts': 'export const b = 2;\n' }, 'p2');
    expect(await pushBranch(ws, { url, branch: BRANCH })).toBe(second);

    expect(server.git(repo, 'rev-parse', BRANCH).trim()).toBe(second);
    expect(server.git(repo, 'log', '--format=%s', BRANCH).trim().split('\n')).toEqual(['[Autopack] p2: work', '[Autopack] p1: work', 'init']);
    server.git(repo, 'fsck', '--strict');
    expect(await headCommit(ws, `refs/remotes/${SYNC_REMOTE}/${BRANCH}`)).toBe(second);
  });

  it('is rejected when the remote branch moved before the push (not a fast-forward)', async () => {
    const { repo, ws, url } = setup();
    await startBranch(ws, BRANCH);
    const theirs = server.commit(repo, { branch: BRANCH, from: 'main', files: { 'x.txt': 'theirs\n' }, message: 'theirs' });
    await commitFiles(ws, BRANCH, { 'src/a.ts': 'export const a = 1;\n' });
    const err = await errorOf(pushBranch(ws, { url, branch: BRANCH }));
    expect(err.code).toBe('PUSH_REJECTED');
    expect(err.data.cause).toMatchObject({ code: 'PushRejectedError' });
    expect(server.git(repo, 'rev-parse', BRANCH).trim()).toBe(theirs);
  });

  it('is rejected when the remote branch moves between ref discovery and the upload (the server decides atomically)', async () => {
    const { repo, ws, url } = setup();
    await startBranch(ws, BRANCH);
    const base = await commitFiles(ws, BRANCH, { 'src/a.ts': 'export const a = 1;\n' });
    await pushBranch(ws, { url, branch: BRANCH });
    await commitFiles(ws, BRANCH, { 'src/b.ts': 'export const b = 2;\n' }, 'p2');
    let theirs: string | undefined;
    server.intercept = (r) => {
      if (r.service === 'receive-pack' && r.kind === 'rpc' && !theirs) theirs = server.commit(repo, { branch: BRANCH, files: { 'y.txt': 'theirs\n' }, message: 'theirs' });
    };
    const err = await errorOf(pushBranch(ws, { url, branch: BRANCH }));
    expect(err.code).toBe('PUSH_REJECTED');
    expect(err.data.cause).toMatchObject({ code: 'GitPushError' });
    expect(server.git(repo, 'rev-parse', BRANCH).trim()).toBe(theirs);
    expect(server.git(repo, 'rev-parse', `${BRANCH}~1`).trim()).toBe(base);
  });

  it('reports an unreachable or failing remote as REMOTE_FAILED and a non-http URL as INVALID_ARGUMENT', async () => {
    const { ws, url } = setup();
    await startBranch(ws, BRANCH);
    server.intercept = () => ({ status: 500 });
    expect((await errorOf(pushBranch(ws, { url, branch: BRANCH }))).code).toBe('REMOTE_FAILED');
    expect((await errorOf(fetchBranch(ws, { url, branch: BRANCH }))).code).toBe('REMOTE_FAILED');
    server.intercept = undefined;
    expect((await errorOf(fetchBranch(ws, { url: 'http://127.0.0.1:1/nothing.git', branch: BRANCH }))).code).toBe('REMOTE_FAILED');
    const local = await errorOf(fetchBranch(ws, { url: 'ssh://me:hunter2secret@example.com/r.git', branch: BRANCH }));
    expect(local.code).toBe('INVALID_ARGUMENT');
    expect(JSON.stringify(local.toJSON())).not.toContain('hunter2secret');
  });
});

describe('resetBranchToRemote', () => {
  it('moves the branch to the fetched commit and makes the working tree equal to it, dropping local commits and changes', async () => {
    const { repo, ws, url } = setup();
    await startBranch(ws, BRANCH);
    // Local state that never reached the remote: a commit, then an uncommitted edit.
    await commitFiles(ws, BRANCH, { 'src/local/only.ts': 'export const mine = 1;\n' });
    fs.writeFileSync(path.join(ws, 'README.md'), '# edited locally\n');
    const theirs = server.commit(repo, { branch: BRANCH, from: 'main', files: { 'src/app.ts': 'export const answer = 43;\n' }, message: 'theirs' });

    const head = await fetchBranch(ws, { url, branch: BRANCH });
    expect(await resetBranchToRemote(ws, { branch: BRANCH, commit: head! })).toEqual({ branch: BRANCH, head: theirs });
    expect(await headCommit(ws)).toBe(theirs);
    expect(await currentBranch(ws)).toBe(BRANCH);
    expect(fs.readFileSync(path.join(ws, 'src/app.ts'), 'utf8')).toBe('export const answer = 43;\n');
    expect(fs.readFileSync(path.join(ws, 'README.md'), 'utf8')).toBe('# Sample\n');
    expect(fs.existsSync(path.join(ws, 'src/local'))).toBe(false);
    expect(await worktreeChanges(ws)).toEqual({ clean: true, paths: [], total: 0 });
  });

  it('accepts a remote-tracking ref, creates a missing local branch, and refuses unknown commits', async () => {
    const { ws, url } = setup();
    const main = await fetchBranch(ws, { url, branch: 'main' });
    expect(await resetBranchToRemote(ws, { branch: BRANCH, commit: `refs/remotes/${SYNC_REMOTE}/main` })).toEqual({ branch: BRANCH, head: main });
    expect(await currentBranch(ws)).toBe(BRANCH);
    expect((await errorOf(resetBranchToRemote(ws, { branch: BRANCH, commit: 'f'.repeat(40) }))).code).toBe('REF_NOT_FOUND');
    expect((await errorOf(resetBranchToRemote(ws, { branch: BRANCH, commit: 'refs/remotes/none' }))).code).toBe('REF_NOT_FOUND');
  });
});

describe('credentials in the URL', () => {
  const auth = { username: 'robot', password: 's3cr3t-T0ken/with:chars' };
  let secured: GitHttpServer;
  beforeAll(async () => {
    secured = await startGitHttpServer({ auth });
  });
  afterAll(async () => secured.close());

  it('are sent as Basic auth, never written to .git/config, and never shown in errors', async () => {
    const repo = 'private';
    secured.createRepository(repo, FILES);
    const ws = path.join(tmp, 'ws-auth');
    secured.clone(repo, ws);
    await startBranch(ws, BRANCH);
    await commitFiles(ws, BRANCH, { 'src/a.ts': 'export const a = 1;\n' });
    await pushBranch(ws, { url: secured.url(repo, auth), branch: BRANCH });
    expect(await fetchBranch(ws, { url: secured.url(repo, auth), branch: BRANCH })).toBe(await headCommit(ws));
    const config = fs.readFileSync(path.join(ws, '.git', 'config'), 'utf8');
    expect(config).toContain(`url = ${secured.url(repo)}`);
    expect(config).not.toContain(encodeURIComponent(auth.password));

    const wrong = { username: 'robot', password: 'wrong-Password-123' };
    for (const attempt of [fetchBranch(ws, { url: secured.url(repo, wrong), branch: BRANCH }), pushBranch(ws, { url: secured.url(repo, wrong), branch: BRANCH })]) {
      const err = await errorOf(attempt);
      expect(err.code).toBe('REMOTE_AUTH_FAILED');
      const shown = `${err.message} ${JSON.stringify(err.toJSON())} ${String(err.stack)}`;
      expect(shown).toContain(secured.url(repo));
      expect(shown).not.toContain('wrong-Password-123');
      expect(err.cause).toBeUndefined();
    }
    const missing = await errorOf(fetchBranch(ws, { url: secured.url(repo), branch: BRANCH }));
    expect(missing.code).toBe('REMOTE_AUTH_FAILED');
  });

  it('redactUrl strips the userinfo only', () => {
    expect(redactUrl('https://user:p%40ss@host.example:8443/a/b.git?x=1')).toBe('https://host.example:8443/a/b.git?x=1');
    expect(redactUrl('https://token@host/r.git')).toBe('https://host/r.git');
    expect(redactUrl('https://host/r@v.git')).toBe('https://host/r@v.git');
    expect(redactUrl('/srv/git/r.git')).toBe('/srv/git/r.git');
  });
});
