import { GitError } from './errors.js';
import { formatCommitMessage, integrationBranchName, parseTrailers, summaryLine } from './messages.js';
import { repoPathProblem } from './paths.js';

describe('formatCommitMessage', () => {
  it('renders the contract subject and trailers, ending with a newline', () => {
    expect(formatCommitMessage({ phaseId: 'P1', summary: 'Add parser', runId: 'run-1', attempt: 2 })).toBe(
      '[Autopack] P1: Add parser\n\nAutopack-Run: run-1\nAutopack-Phase: P1\nAutopack-Attempt: 2\n',
    );
  });

  it('cuts a multi-line summary to its first non-blank line, trimmed', () => {
    const message = formatCommitMessage({ phaseId: 'P1', summary: '\n   First line  \nsecond line\n', runId: 'r', attempt: 1 });
    expect(message.split('\n')[0]).toBe('[Autopack] P1: First line');
    expect(message).not.toContain('second line');
  });

  it('caps the summary at 200 characters and never leaves it empty', () => {
    expect(summaryLine('x'.repeat(500))).toHaveLength(200);
    expect(summaryLine('   \n\t\n')).toBe('phase complete');
    expect(formatCommitMessage({ phaseId: 'P', summary: '', runId: 'r', attempt: 0 })).toContain('[Autopack] P: phase complete\n');
  });

  it('refuses ids that would break the trailer block', () => {
    expect(() => formatCommitMessage({ phaseId: 'a\nb', summary: 's', runId: 'r', attempt: 1 })).toThrow(GitError);
    expect(() => formatCommitMessage({ phaseId: 'p', summary: 's', runId: 'r', attempt: -1 })).toThrow(GitError);
  });
});

describe('parseTrailers', () => {
  it('round-trips formatCommitMessage', () => {
    const message = formatCommitMessage({ phaseId: 'P-7', summary: 'Multi\nline', runId: 'run_9', attempt: 3 });
    expect(parseTrailers(message)).toEqual({ 'Autopack-Run': 'run_9', 'Autopack-Phase': 'P-7', 'Autopack-Attempt': '3' });
  });

  it('only reads the last paragraph, and only when it is all trailers', () => {
    expect(parseTrailers('Fix: a subject line only')).toEqual({});
    expect(parseTrailers('subject\n\nA-B: 1\nfree text\n')).toEqual({});
    expect(parseTrailers('subject\n\nKey: in the body\n\nLast: one\r\n  continued\n\n\n')).toEqual({ Last: 'one continued' });
    expect(parseTrailers('subject\n\nconstructor: x\nKey: 1\nKey: 2\n')).toEqual({ constructor: 'x', Key: '1' });
  });
});

describe('integrationBranchName', () => {
  it('prefixes the run id', () => {
    expect(integrationBranchName('run-2024.01_a')).toBe('autonomous/run-2024.01_a');
  });

  it.each(['', 'a b', 'a/b', '..x', 'x..y', '.hidden', 'x.lock', 'x~1', 'x:y'])('rejects %j with INVALID_ARGUMENT', (id) => {
    expect(() => integrationBranchName(id)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('repoPathProblem', () => {
  it.each(['a.txt', 'src/a/b.ts', '.gitignore', '.github/workflows/ci.yml', 'a/.gitkeep'])('accepts %j', (p) => {
    expect(repoPathProblem(p)).toBeNull();
  });

  it.each([
    '',
    '/etc/passwd',
    'C:/x',
    '../x',
    'a/../../x',
    'a//b',
    './a',
    'a/',
    'a\\b',
    '.git/config',
    'sub/.GIT/hooks/x',
    '.git./config',
    'GIT~1/config',
    'a\0b',
  ])('rejects %j', (p) => {
    expect(repoPathProblem(p)).not.toBeNull();
  });
});

describe('GitError', () => {
  it('serializes to {code, message, data} and back', () => {
    const err = new GitError('DIRTY_WORKTREE', 'dirty', { paths: ['a'] });
    const json = JSON.parse(JSON.stringify(err));
    expect(json).toEqual({ code: 'DIRTY_WORKTREE', message: 'dirty', data: { paths: ['a'] } });
    expect(GitError.fromJSON(json)).toMatchObject({ code: 'DIRTY_WORKTREE', message: 'dirty', data: { paths: ['a'] } });
  });
});
