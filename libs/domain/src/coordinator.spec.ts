import type { ServiceStage } from '@app/contracts';
import { cycleTimes, detectStage, isFoundationFile, isTestFile, medianAndP90, readmeIntent, testCommandOf, type ServiceFacts } from './coordinator.js';

describe('detectStage', () => {
  const cases: [string, ServiceFacts, ServiceStage][] = [
    ['an empty repository', { files: [], testsPass: null, deployed: false }, 'needs_spec'],
    ['a README only', { files: ['README.md'], testsPass: null, deployed: false }, 'needs_spec'],
    ['code but no SPEC', { files: ['README.md', 'src/index.js'], testsPass: true, deployed: false }, 'needs_spec'],
    ['a SPEC and foundation files', { files: ['README.md', '.gitignore', 'SPEC.md', 'autopack.yaml', 'LICENSE'], testsPass: null, deployed: false }, 'ready_for_build'],
    ['code without tests', { files: ['SPEC.md', 'package.json', 'src/index.js'], testsPass: true, deployed: false }, 'needs_tests'],
    ['tests without a command', { files: ['SPEC.md', 'src/index.js', 'test/index.test.js'], testsPass: null, deployed: false }, 'needs_tests'],
    ['failing tests', { files: ['SPEC.md', 'src/index.js', 'test/index.test.js'], testsPass: false, deployed: false }, 'tests_failing'],
    ['passing tests', { files: ['SPEC.md', 'src/index.js', 'src/index.spec.ts'], testsPass: true, deployed: false }, 'ready_for_deploy'],
    ['deployed', { files: ['SPEC.md', 'app.py', 'test_app.py'], testsPass: true, deployed: true }, 'production'],
    ['deployed but failing again', { files: ['SPEC.md', 'app.py', 'test_app.py'], testsPass: false, deployed: true }, 'tests_failing'],
  ];
  it.each(cases)('%s', (_name, facts, stage) => {
    expect(detectStage(facts)).toBe(stage);
  });
});

describe('file kinds', () => {
  it.each([
    ['README.md', true],
    ['readme', true],
    ['LICENSE-MIT', true],
    ['.gitignore', true],
    ['SPEC.md', true],
    ['autopack.yaml', true],
    ['docs/README.md', false],
    ['package.json', false],
    ['src/index.js', false],
  ])('foundation %s: %s', (file, yes) => expect(isFoundationFile(file)).toBe(yes));

  it.each([
    ['test/a.js', true],
    ['pkg/tests/helpers.py', true],
    ['src/a.test.ts', true],
    ['src/a.spec.js', true],
    ['a_test.go', true],
    ['test_app.py', true],
    ['src/testing.js', false],
    ['latest.js', false],
    ['test_app.js', false],
    ['contest/a.js', false],
  ])('test %s: %s', (file, yes) => expect(isTestFile(file)).toBe(yes));
});

describe('testCommandOf', () => {
  const none = { autopackCiCommand: null, packageTestScript: null, makefile: null };
  it.each([
    ['nothing', none, null],
    ['a package.json test script', { ...none, packageTestScript: 'node --test' }, 'npm test'],
    ["npm's placeholder", { ...none, packageTestScript: 'echo "Error: no test specified" && exit 1' }, null],
    ['a Makefile test target', { ...none, makefile: 'build:\n\tcc x.c\ntest: build\n\t./run\n' }, 'make test'],
    ['a Makefile without one', { ...none, makefile: 'build:\n\tcc x.c\n' }, null],
    ['autopack.yaml wins', { autopackCiCommand: 'pytest -q', packageTestScript: 'jest', makefile: 'test:\n' }, 'pytest -q'],
  ])('%s', (_n, sources, command) => expect(testCommandOf(sources)).toBe(command));
});

describe('readmeIntent', () => {
  it('takes the first paragraph after the headings and badges', () => {
    expect(readmeIntent('# Quotes\n\n[![ci](x)](y)\n\nA tiny HTTP service\nthat serves quotes.\n\nMore.')).toBe('A tiny HTTP service that serves quotes.');
    expect(readmeIntent('# Only a title\n')).toBeNull();
    expect(readmeIntent(null)).toBeNull();
  });
});

describe('cycle times', () => {
  it('adds the time of each finished stage; the current one is not finished', () => {
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    expect(
      cycleTimes([
        { from: null, to: 'needs_tests', at: t0 },
        { from: 'needs_tests', to: 'tests_failing', at: t0 + 60_000 },
        { from: 'tests_failing', to: 'needs_tests', at: t0 + 90_000 },
        { from: 'needs_tests', to: 'ready_for_deploy', at: t0 + 100_000 },
      ]),
    ).toEqual({ needs_tests: 70, tests_failing: 30 });
    expect(cycleTimes([])).toEqual({});
  });

  it('median and p90 by nearest rank', () => {
    expect(medianAndP90([])).toBeNull();
    expect(medianAndP90([5])).toEqual({ median: 5, p90: 5 });
    expect(medianAndP90([4, 1, 3, 2])).toEqual({ median: 2.5, p90: 4 });
    expect(medianAndP90([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).toEqual({ median: 5.5, p90: 9 });
  });
});
