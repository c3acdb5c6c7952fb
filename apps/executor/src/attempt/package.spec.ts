import fs from 'node:fs';
import path from 'node:path';
import type { SubmitPlanArgs } from '@app/contracts';
import { branchLog, checkoutBranch, createSampleRepository, ensureIntegrationBranch, headCommit, initRepository, listTrackedFiles, readFileAtRef, worktreeChanges } from '@app/git';
import { FakeBuildGit, FakeGit, makeClaim, silentLog } from '../../../../test/executor/attempt-fakes.js';
import { commitFiles, fsck, integrationOf, removeTempDirs, tempDir, testAuthor } from '../../../../test/executor/git-workspaces.js';
import { AttemptStoppedError } from '../lease-keeper.js';
import { type PackageInput, foundationGitignore, foundationReadme, packageFoundation, planCiCommands } from './package.js';
import { workspaceBuildGit, workspaceGit } from './ports.js';

const plan: SubmitPlanArgs = {
  tiers: [
    { tier_id: 'docs', tier_index: 1, name: 'Docs' },
    { tier_id: 'service', tier_index: 0, name: 'Service' },
  ],
  phases: [
    { phase_id: 'tests', phase_index: 1, tier_id: 'service', name: 'Tests', scope: { paths: ['test/'] }, ci: { command: 'npm test' } },
    { phase_id: 'server', phase_index: 0, tier_id: 'service', name: 'HTTP server', scope: { paths: ['server.js', 'package.json'] }, ci: { command: 'npm test' } },
    { phase_id: 'guide', phase_index: 0, tier_id: 'docs', name: 'Guide', scope: { paths: ['docs/guide.md'] } },
  ],
};
const input: PackageInput = { intent: 'A tiny HTTP service\nthat answers GET /health.', plan, runCi: { command: 'npm run lint' } };
const claim = makeClaim({ phase_id: 'package', phase: { phase_id: 'package', name: 'Package', task_category: null } });
const live = () => new AbortController().signal;

afterEach(removeTempDirs);

describe(foundationReadme.name, () => {
  it('states the title, intent, plan in brief, layout and test commands, and links the SPEC when there is one', () => {
    expect(foundationReadme({ ...input, name: 'health-svc' }, true)).toBe(
      [
        '# health-svc',
        '',
        'A tiny HTTP service\nthat answers GET /health.',
        '',
        '## Plan',
        '',
        'The full plan is in [SPEC.md](SPEC.md).',
        '',
        '- Service: HTTP server; Tests',
        '- Docs: Guide',
        '',
        '## Layout',
        '',
        '- `test/`: Tests',
        '- `server.js`: HTTP server',
        '- `package.json`: HTTP server',
        '- `docs/guide.md`: Guide',
        '',
        '## Tests',
        '',
        'Run the tests with each of:',
        '',
        '- `npm run lint`',
        '- `npm test`',
        '',
      ].join('\n'),
    );
  });

  it("takes the intent's first line as the title without a name, and leaves out what the plan does not say", () => {
    const bare: SubmitPlanArgs = { tiers: [{ tier_id: 't', tier_index: 0, name: 'Only' }], phases: [{ phase_id: 'p', phase_index: 0, tier_id: 't', name: 'Do it' }] };
    expect(foundationReadme({ intent: '  Make it so\nplease', plan: bare, runCi: null }, false)).toBe('# Make it so\n\nMake it so\nplease\n\n## Plan\n\n- Only: Do it\n');
  });
});

describe(foundationGitignore.name, () => {
  it('ignores dependencies, build output, coverage, local secrets and logs', () => {
    expect(foundationGitignore([])).toBe('node_modules/\ndist/\nbuild/\ncoverage/\n.env\n.env.*\n!.env.example\n__pycache__/\n.venv/\n*.log\n.DS_Store\n');
  });

  it('leaves out an entry that would hide a tracked file or a planned path, whose new files commits would skip', () => {
    const kept = ['build/deploy.sh', 'src/coverage/report.ts', 'config/.env.production'];
    expect(foundationGitignore(kept)).toBe('node_modules/\n__pycache__/\n.venv/\n*.log\n.DS_Store\n');
    // .env.example stays committable: it is what the negation is for.
    expect(foundationGitignore(['.env.example'])).toContain('.env.*\n!.env.example\n');
  });
});

describe(planCiCommands.name, () => {
  it("lists the run's command, then the phases', each once", () => {
    expect(planCiCommands(plan, { command: 'npm test' })).toEqual(['npm test']);
    expect(planCiCommands(plan, null)).toEqual(['npm test']);
    expect(planCiCommands(plan, { command: 'make check' })).toEqual(['make check', 'npm test']);
  });
});

describe(packageFoundation.name, () => {
  /** A repository whose integration branch holds `files` (the SPEC commit of step 1, say), checked out. */
  async function workspace(files: Record<string, string>): Promise<string> {
    const ws = tempDir();
    await createSampleRepository(ws, files, { author: testAuthor, message: 'init\n' });
    await ensureIntegrationBranch(ws, { runId: 'r1' });
    await checkoutBranch(ws, 'autonomous/r1');
    return ws;
  }
  const run = (ws: string, git = workspaceGit, buildGit = workspaceBuildGit, signal = live()) =>
    packageFoundation({ git, buildGit, workspace: ws, log: silentLog }, claim, integrationOf(ws, { phaseId: 'package' }), { ...input, name: 'health-svc', signal });

  it('commits the README and ignore file a repository lacks as the phase’s one commit', async () => {
    const ws = await workspace({ 'SPEC.md': '# SPEC\n' });
    const before = await headCommit(ws, 'refs/heads/autonomous/r1');

    const result = await run(ws);

    expect(result).toEqual({ kind: 'packaged', sha: expect.stringMatching(/^[0-9a-f]{40}$/), parent: before, files: ['README.md', '.gitignore'] });
    const [commit] = await branchLog(ws, 'autonomous/r1', { depth: 1 });
    expect(commit.message).toBe('[Autopack] package: foundation files: README.md, .gitignore\n\nAutopack-Run: r1\nAutopack-Phase: package\nAutopack-Attempt: 1\n');
    expect(await listTrackedFiles(ws, 'autonomous/r1')).toEqual(['.gitignore', 'README.md', 'SPEC.md']);
    expect(await readFileAtRef(ws, 'autonomous/r1', 'README.md')).toBe(foundationReadme({ ...input, name: 'health-svc' }, true));
    expect(await readFileAtRef(ws, 'autonomous/r1', '.gitignore')).toBe(foundationGitignore(['SPEC.md', 'test/', 'server.js', 'package.json', 'docs/guide.md']));
    expect(await worktreeChanges(ws)).toMatchObject({ clean: true });
    fsck(ws);
  });

  it('adds only what is missing, and changes no existing file', async () => {
    const ws = await workspace({ 'SPEC.md': '# SPEC\n', 'readme.rst': 'Mine\n', 'package.json': '{"name":"mine"}\n' });
    const result = await run(ws);
    expect(result).toMatchObject({ kind: 'packaged', files: ['.gitignore'] });
    expect(await readFileAtRef(ws, 'autonomous/r1', 'readme.rst')).toBe('Mine\n');
    expect(await readFileAtRef(ws, 'autonomous/r1', 'package.json')).toBe('{"name":"mine"}\n');
    expect(await readFileAtRef(ws, 'autonomous/r1', 'README.md')).toBeNull();
    fsck(ws);
  });

  it('commits nothing when the repository has its foundation files', async () => {
    const ws = await workspace({ 'README.md': '# Mine\n', '.gitignore': 'tmp/\n' });
    const head = await headCommit(ws, 'refs/heads/autonomous/r1');
    expect(await run(ws)).toEqual({ kind: 'packaged', sha: null, parent: head, files: [] });
    expect(await headCommit(ws, 'refs/heads/autonomous/r1')).toBe(head);
    expect(fs.readFileSync(path.join(ws, '.gitignore'), 'utf8')).toBe('tmp/\n');
  });

  it('packages an unborn branch too: the foundation commit is then the root commit', async () => {
    const ws = tempDir();
    await initRepository(ws);
    await workspaceGit.checkOut(integrationOf(ws));
    const result = await run(ws);
    expect(result).toMatchObject({ kind: 'packaged', parent: null, files: ['README.md', '.gitignore'] });
    // No SPEC in this repository: the README does not link one.
    expect(await readFileAtRef(ws, 'autonomous/r1', 'README.md')).not.toContain('SPEC.md');
    fsck(ws);
  });

  it('never overwrites a file already in the working tree, even one the repository does not track', async () => {
    const ws = tempDir();
    fs.writeFileSync(path.join(ws, 'README.md'), 'local notes\n');
    const git = new FakeGit();
    const buildGit = new FakeBuildGit();
    buildGit.tracked = ['SPEC.md', 'src/build/x.ts'];
    const result = await run(ws, git, buildGit);
    expect(result).toEqual({ kind: 'packaged', sha: 'commit1', parent: 'base0000', files: ['.gitignore'] });
    expect(fs.readFileSync(path.join(ws, 'README.md'), 'utf8')).toBe('local notes\n');
    expect(git.ops).toEqual(['headCommit autonomous/r1', 'headCommit autonomous/r1', 'commit .gitignore|', 'publish commit1 on base0000']);
    expect(buildGit.ops).toEqual(['listTrackedFiles base0000']);
    expect(fs.readFileSync(path.join(ws, '.gitignore'), 'utf8')).not.toContain('build/');
  });

  it('puts the working copy back when the commit fails, and writes nothing once stopped', async () => {
    const ws = tempDir();
    const git = new FakeGit();
    git.commitFails = new Error('boom');
    await expect(run(ws, git, new FakeBuildGit())).rejects.toThrow('boom');
    expect(fs.readdirSync(ws).filter((f) => f !== '.git')).toEqual([]);

    const stop = new AbortController();
    stop.abort(new AttemptStoppedError('shutdown'));
    const quiet = new FakeGit();
    await expect(run(ws, quiet, new FakeBuildGit(), stop.signal)).rejects.toMatchObject({ reason: 'shutdown' });
    expect(quiet.ops).toEqual([]);
  });

  it('reports a lost push with the commit of this phase that won', async () => {
    const ws = tempDir();
    const git = new FakeGit();
    git.publishAs = { kept: false, phaseCommit: null };
    expect(await run(ws, git, new FakeBuildGit())).toEqual({ kind: 'push_lost', phaseCommit: null });
  });

  it('is deterministic, so a retried attempt commits the same bytes', async () => {
    const a = await workspace({ 'SPEC.md': '# SPEC\n' });
    const b = await workspace({ 'SPEC.md': '# SPEC\n' });
    await run(a);
    await run(b);
    for (const f of ['README.md', '.gitignore']) expect(await readFileAtRef(a, 'autonomous/r1', f)).toBe(await readFileAtRef(b, 'autonomous/r1', f));
    await commitFiles(a, 'autonomous/r1', { 'server.js': 'x\n' }, 'server');
    expect(await run(a)).toMatchObject({ kind: 'packaged', sha: null });
  });
});
