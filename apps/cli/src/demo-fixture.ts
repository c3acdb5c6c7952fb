import type { RunStartRequest } from '@app/contracts';
import type { LlmScriptInput } from '@app/testing';

/** The demo's sample repository: a tiny calculator library with its own test runner. */
/** A test runner without dependencies: runs every exported function of test/*.test.js, exits 1 if any throws. */
export const NODE_TEST_RUNNER = `import { readdirSync } from 'node:fs';

// Runs every exported function of test/*.test.js; exits 1 if any throws.
const dir = new URL('.', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort();
let failed = 0;
for (const file of files) {
  const mod = await import(new URL(file, dir));
  for (const [name, fn] of Object.entries(mod)) {
    try {
      await fn();
      console.log(\`ok   \${file} \${name}\`);
    } catch (err) {
      failed++;
      console.log(\`FAIL \${file} \${name}: \${err.message}\`);
    }
  }
}
console.log(\`\${files.length} test files, \${failed} failed\`);
process.exit(failed ? 1 : 0);
`;

export const DEMO_REPO_FILES: Record<string, string> = {
  'package.json': `${JSON.stringify({ name: 'autopack-demo-calc', version: '1.0.0', private: true, type: 'module', scripts: { test: 'node test/run.js' } }, null, 2)}\n`,
  '.gitignore': 'node_modules/\n',
  'README.md': '# demo-calc\n\nA tiny calculator library.\n',
  'src/math.js': '/** Adds two numbers. */\nexport function add(a, b) {\n  return a + b;\n}\n',
  'test/math.test.js': "import assert from 'node:assert/strict';\nimport { add } from '../src/math.js';\n\nexport function addsNumbers() {\n  assert.equal(add(2, 3), 5);\n}\n",
  'test/run.js': NODE_TEST_RUNNER,
};

const CI = { command: 'node test/run.js', timeout_s: 60 };

/** The demo plan: 2 tiers, 4 phases. */
export function demoPlan(runId: string): RunStartRequest {
  return {
    run: { run_id: runId, token_cap: 2_000_000, cost_cap_usd: 5, max_duration_minutes: 30 },
    tiers: [
      { tier_id: 'core', tier_index: 0, name: 'Core math', description: 'Arithmetic functions with tests' },
      { tier_id: 'interface', tier_index: 1, name: 'Interface and docs', description: 'Command line and README' },
    ],
    phases: [
      {
        phase_id: 'math-multiply',
        phase_index: 0,
        tier_id: 'core',
        name: 'Add multiply()',
        description: 'Add an exported multiply(a, b) to src/math.js and a test for it in test/multiply.test.js.',
        task_category: 'feature_scaffolding',
        complexity: 'low',
        scope: { paths: ['src/math.js', 'test/multiply.test.js'], read_only_context: ['test/run.js', 'test/math.test.js'] },
        acceptance_criteria: ['multiply(3, 4) === 12', 'the test suite passes'],
        ci: CI,
      },
      {
        phase_id: 'math-divide',
        phase_index: 1,
        tier_id: 'core',
        name: 'Add divide()',
        description: 'Add an exported divide(a, b) to src/math.js that throws a RangeError when b is 0, with tests in test/divide.test.js.',
        task_category: 'feature_scaffolding',
        complexity: 'low',
        scope: { paths: ['src/math.js', 'test/divide.test.js'], read_only_context: ['test/run.js'] },
        acceptance_criteria: ['divide(12, 4) === 3', 'divide(1, 0) throws RangeError', 'the test suite passes'],
        ci: CI,
      },
      {
        phase_id: 'cli',
        phase_index: 2,
        tier_id: 'interface',
        name: 'Command line',
        description: 'Add src/cli.js exporting run(args) that evaluates "<a> <op> <b>" with the math functions, and a test.',
        task_category: 'feature_scaffolding',
        complexity: 'medium',
        scope: { paths: ['src/cli.js', 'test/cli.test.js'], read_only_context: ['src/math.js', 'test/run.js'] },
        acceptance_criteria: ["run(['6', '*', '7']) returns 42", 'unknown operators throw'],
        ci: CI,
      },
      {
        phase_id: 'docs-readme',
        phase_index: 3,
        tier_id: 'interface',
        name: 'Document the library',
        description: 'Describe add, multiply, divide and the command line in README.md.',
        task_category: 'docs',
        complexity: 'low',
        scope: { paths: ['README.md'], read_only_context: ['src/math.js', 'src/cli.js'] },
        acceptance_criteria: ['README lists every function'],
        ci: CI,
      },
    ],
  };
}

const MULTIPLY = '/** Multiplies two numbers. */\nexport function multiply(a, b) {\n  return a * b;\n}\n';
const ADD = '/** Adds two numbers. */\nexport function add(a, b) {\n  return a + b;\n}\n';
const DIVIDE_TEST =
  "import assert from 'node:assert/strict';\nimport { divide } from '../src/math.js';\n\nexport function dividesNumbers() {\n  assert.equal(divide(12, 4), 3);\n}\n\nexport function refusesDivisionByZero() {\n  assert.throws(() => divide(1, 0), RangeError);\n}\n";

const approve = (phase: string, summary: string, issues: unknown[] = []) => ({
  tool: 'submit_review',
  match: `# Phase ${phase}:`,
  arguments: { approved: true, summary, confidence: 'high', issues },
  usage: { input_tokens: 1400, output_tokens: 120 },
});

/**
 * The scripted replies the offline demo plays back. `math-divide` first returns a divide()
 * that does not throw on zero, so CI fails and the second attempt (whose prompt carries the
 * CI output) fixes it.
 */
export const DEMO_SCRIPT: LlmScriptInput = {
  replies: [
    {
      tool: 'submit_changes',
      match: '# Phase math-multiply:',
      arguments: {
        summary: 'Add multiply() with a test',
        edits: [
          { path: 'src/math.js', action: 'edit', search: ADD, replace: ADD + '\n' + MULTIPLY },
          {
            path: 'test/multiply.test.js',
            action: 'create',
            content: "import assert from 'node:assert/strict';\nimport { multiply } from '../src/math.js';\n\nexport function multipliesNumbers() {\n  assert.equal(multiply(3, 4), 12);\n}\n",
          },
        ],
      },
      usage: { input_tokens: 2100, output_tokens: 260 },
    },
    approve('math-multiply', 'multiply() is correct and tested.'),
    {
      tool: 'submit_changes',
      match: '# Phase math-divide:',
      arguments: {
        summary: 'Add divide() with tests',
        edits: [
          { path: 'src/math.js', action: 'edit', search: MULTIPLY, replace: MULTIPLY + '\n/** Divides a by b. */\nexport function divide(a, b) {\n  return a / b;\n}\n' },
          { path: 'test/divide.test.js', action: 'create', content: DIVIDE_TEST },
        ],
      },
      usage: { input_tokens: 2300, output_tokens: 240 },
    },
    {
      tool: 'submit_changes',
      match: ['# Phase math-divide:', 'refusesDivisionByZero'],
      arguments: {
        summary: 'Add divide() that rejects division by zero, with tests',
        edits: [
          {
            path: 'src/math.js',
            action: 'edit',
            search: MULTIPLY,
            replace:
              MULTIPLY + "\n/** Divides a by b; throws a RangeError when b is 0. */\nexport function divide(a, b) {\n  if (b === 0) throw new RangeError('division by zero');\n  return a / b;\n}\n",
          },
          { path: 'test/divide.test.js', action: 'create', content: DIVIDE_TEST },
        ],
      },
      usage: { input_tokens: 2600, output_tokens: 280 },
    },
    approve('math-divide', 'divide() guards against zero and is tested.'),
    {
      tool: 'submit_changes',
      match: '# Phase cli:',
      arguments: {
        summary: 'Add a small command line evaluator',
        edits: [
          {
            path: 'src/cli.js',
            action: 'create',
            content:
              "import { add, divide, multiply } from './math.js';\n\nconst OPS = { '+': add, '*': multiply, '/': divide };\n\n/** Evaluates [a, op, b]. */\nexport function run(args) {\n  const [a, op, b] = args;\n  const fn = OPS[op];\n  if (!fn) throw new Error(`unknown operator: ${op}`);\n  return fn(Number(a), Number(b));\n}\n",
          },
          {
            path: 'test/cli.test.js',
            action: 'create',
            content:
              "import assert from 'node:assert/strict';\nimport { run } from '../src/cli.js';\n\nexport function evaluatesExpressions() {\n  assert.equal(run(['6', '*', '7']), 42);\n}\n\nexport function rejectsUnknownOperators() {\n  assert.throws(() => run(['1', '%', '2']), /unknown operator/);\n}\n",
          },
        ],
      },
      usage: { input_tokens: 2500, output_tokens: 330 },
    },
    approve('cli', 'The evaluator works; subtraction is not supported yet.', [
      { issue_key: 'cli_missing_subtraction', severity: 'minor', category: 'feature_gap', description: 'The CLI has no "-" operator.', location: 'src/cli.js:3' },
    ]),
    {
      tool: 'submit_changes',
      match: '# Phase docs-readme:',
      arguments: {
        summary: 'Document the library and the command line',
        edits: [
          {
            path: 'README.md',
            action: 'replace',
            content:
              '# demo-calc\n\nA tiny calculator library.\n\n## Functions\n\n- `add(a, b)`: the sum.\n- `multiply(a, b)`: the product.\n- `divide(a, b)`: the quotient; throws `RangeError` when `b` is 0.\n\n## Command line\n\n`run(["6", "*", "7"])` from `src/cli.js` returns 42. Operators: `+`, `*`, `/`.\n\n## Tests\n\n`npm test`\n',
          },
        ],
      },
      usage: { input_tokens: 1900, output_tokens: 210 },
    },
    approve('docs-readme', 'README covers every function.'),
  ],
};
