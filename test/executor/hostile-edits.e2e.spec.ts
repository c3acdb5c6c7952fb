import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { worktreeChanges } from '@app/git';
import { type ScriptedLlmServer } from '@app/testing';
import { DEMO_REPO_FILES, approveReply, builderPrompts, builderReply, createRepo, executorEnv, getRun, phase, phaseCommits, plan, runExecutor, startRun, treeSnapshot, useTestbed } from './harness.js';

let llm: ScriptedLlmServer | undefined;

const bed = useTestbed('hostile', { leaseSeconds: 20 });

const BIG = Array.from({ length: 200 }, (_, i) => `row ${i + 1}: ${'x'.repeat(20)}\n`).join('');
const TRUNCATED = BIG.split('\n').slice(0, 20).join('\n') + '\n';
const HUGE_FILE = `${'y'.repeat(899_999)}\n`;
const good = (id: string) => ({ path: `src/${id}.js`, action: 'create', content: `export const ${id} = '${id}';\n` });

describe('hostile Builder edits against the real executor process (no git on PATH)', () => {
  it('refuses path escapes, .git writes, symlink writes, truncation and oversized output, writing nothing, and then accepts a good reply', async () => {
    const repo = path.join(bed.tmp, 'repo');
    const outsideDir = path.join(bed.tmp, 'outside-target');
    mkdirSync(outsideDir);
    await createRepo(repo, { ...DEMO_REPO_FILES, 'data/big.txt': BIG }, { outlink: outsideDir });
    const initial = treeSnapshot(repo);

    const runId = 'hostile-run';
    await startRun(bed.sup.url, plan(runId, [phase('h1', 0), phase('h2', 1), phase('h3', 2)]));
    llm = await bed.startLlm({
      script: {
        replies: [
          builderReply('h1', { edits: [{ path: '../outside.txt', action: 'create', content: 'escaped\n' }] }),
          builderReply('h1', { edits: [{ path: '.git/config', action: 'replace', content: '[core]\n\tbare = true\n' }] }),
          builderReply('h1', { edits: [good('h1')] }),
          builderReply('h2', { edits: [{ path: 'outlink/pwned.txt', action: 'create', content: 'through the link\n' }] }),
          builderReply('h2', { edits: [{ path: 'data/big.txt', action: 'replace', content: TRUNCATED }] }),
          builderReply('h2', { edits: [good('h2')] }),
          builderReply('h3', { edits: Array.from({ length: 6 }, (_, i) => ({ path: `blobs/b${i}.txt`, action: 'create', content: HUGE_FILE })) }),
          builderReply('h3', { edits: [good('h3')] }),
          approveReply(3),
        ],
      },
    });

    const result = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });

    const run = await getRun(bed.sup.url, runId);
    expect(run.state).toBe('DONE_SUCCESS');
    expect(run.phases.map((p: any) => [p.phase_id, p.state, p.attempts_used])).toEqual([
      ['h1', 'COMPLETE', 3],
      ['h2', 'COMPLETE', 3],
      ['h3', 'COMPLETE', 2],
    ]);
    // The supervisor recorded each phase's last refusal with its reason.
    expect(run.phases.map((p: any) => p.last_failure_reason)).toEqual([
      expect.stringContaining('edits refused: .git/config: writes into .git are not allowed'),
      expect.stringContaining('edits refused: edit 1 (replace data/big.txt): would shrink the file'),
      expect.stringContaining('edits refused: edits write 5400000 bytes'),
    ]);

    // Each refusal reached the next attempt's prompt with its reason.
    const h1 = builderPrompts(llm, 'h1');
    const h2 = builderPrompts(llm, 'h2');
    const h3 = builderPrompts(llm, 'h3');
    expect([h1.length, h2.length, h3.length]).toEqual([3, 3, 2]);
    for (const first of [h1[0], h2[0], h3[0]]) expect(first).not.toContain('Feedback from earlier attempts');
    expect(h1[1]).toContain('Your previous edits were refused and nothing was written');
    expect(h1[1]).toContain('../outside.txt: path escapes the workspace ("..")');
    expect(h1[2]).toContain('.git/config: writes into .git are not allowed');
    expect(h2[1]).toContain('outlink/pwned.txt: path goes through a symlink (outlink)');
    expect(h2[2]).toContain('edit 1 (replace data/big.txt): would shrink the file from 200 to 20 lines (more than 60%); looks truncated');
    expect(h3[1]).toContain('edits write 5400000 bytes, above the 5000000-byte limit');

    // Only the good replies were audited and committed, one commit per phase.
    const reviews = llm.requestsFor('submit_review');
    expect(reviews).toHaveLength(3);
    for (const r of reviews) expect(r.text).not.toMatch(/outside\.txt|\.git\/config|pwned|big\.txt|blobs\//);
    expect(llm.remainingReplies()).toEqual([]);
    expect(await phaseCommits(repo, runId)).toEqual([
      ['h1', '3'],
      ['h2', '3'],
      ['h3', '2'],
    ]);

    // Nothing was written anywhere else: no file outside the repository, the link target is
    // untouched, .git/config and the large file have their original bytes, and the working
    // tree holds exactly the original files plus the three good ones.
    expect(existsSync(path.join(bed.tmp, 'outside.txt'))).toBe(false);
    expect(readdirSync(outsideDir)).toEqual([]);
    const final = treeSnapshot(repo, { skipGit: true });
    const expected = Object.fromEntries(Object.entries(initial).filter(([p]) => !p.startsWith('.git/')));
    for (const id of ['h1', 'h2', 'h3']) expected[`src/${id}.js`] = Buffer.from(good(id).content).toString('base64');
    expect(final).toEqual(expected);
    expect(readFileSync(path.join(repo, '.git/config'))).toEqual(Buffer.from(initial['.git/config'], 'base64'));
    expect((await worktreeChanges(repo)).clean).toBe(true);
  }, 150_000);
});
