import { type SubmitPlanArgs, SubmitPlanArgsSchema } from '@app/contracts';
import { parseSpecPlan, renderSpecMarkdown } from './spec-markdown.js';

const plan: SubmitPlanArgs = {
  tiers: [
    { tier_id: 'ship', tier_index: 1, name: 'Ship it', description: 'Docs and packaging.' },
    { tier_id: 'core', tier_index: 0, name: 'Core' },
  ],
  phases: [
    { phase_id: 'readme', phase_index: 0, tier_id: 'ship', name: 'README', task_category: 'docs', scope: { paths: ['README.md'] } },
    {
      phase_id: 'tests',
      phase_index: 1,
      tier_id: 'core',
      name: 'Tests',
      task_category: 'tests',
      scope: { paths: ['test/'], read_only_context: ['server.js'] },
      ci: { command: 'node --test', timeout_s: 120 },
      acceptance_criteria: ['covers GET /health', 'runs in\nunder a second'],
    },
    {
      phase_id: 'server',
      phase_index: 0,
      tier_id: 'core',
      name: 'Server',
      description: 'An HTTP server on $PORT.',
      complexity: 'low',
      ci: { command: 'echo `date` && node --test' },
    },
  ],
};

const INTENT = '  A tiny HTTP service with a health route.\n';

describe(renderSpecMarkdown.name, () => {
  it('renders the intent, then tiers and phases in index order, then the plan as data', () => {
    expect(renderSpecMarkdown(INTENT, plan)).toBe(
      [
        '# SPEC',
        '',
        '## Intent',
        '',
        'A tiny HTTP service with a health route.',
        '',
        '## Plan',
        '',
        '### Tier 0: Core (`core`)',
        '',
        '#### Phase `server`: Server',
        '',
        'An HTTP server on $PORT.',
        '',
        '- Task category: generic (complexity low)',
        '- Verified by: `` echo `date` && node --test ``',
        '',
        '#### Phase `tests`: Tests',
        '',
        '- Task category: tests',
        '- May change: `test/`',
        '- Reads: `server.js`',
        '- Verified by: `node --test` (timeout 120 s)',
        '- Acceptance criteria:',
        '  - covers GET /health',
        '  - runs in under a second',
        '',
        '### Tier 1: Ship it (`ship`)',
        '',
        'Docs and packaging.',
        '',
        '#### Phase `readme`: README',
        '',
        '- Task category: docs',
        '- May change: `README.md`',
        '',
        '## Plan as data',
        '',
        '```json',
        JSON.stringify(plan, null, 2),
        '```',
        '',
      ].join('\n'),
    );
  });

  it('is deterministic, and its data block reads back as the same plan', () => {
    const spec = renderSpecMarkdown(INTENT, plan);
    expect(renderSpecMarkdown(INTENT, structuredClone(plan))).toBe(spec);
    const data = /## Plan as data\n\n```json\n([\s\S]*)\n```\n$/.exec(spec)?.[1];
    expect(SubmitPlanArgsSchema.parse(JSON.parse(data ?? 'null'))).toEqual(plan);
  });

  it('keeps the data block fenced when the plan holds backtick runs', () => {
    const fencey: SubmitPlanArgs = { ...plan, phases: [{ ...plan.phases[2], description: 'use ```js blocks```' }] };
    const spec = renderSpecMarkdown(INTENT, fencey);
    expect(spec).toContain('\n````json\n');
    expect(spec.endsWith('\n````\n')).toBe(true);
  });
});

describe(parseSpecPlan.name, () => {
  it('reads back the plan a rendered SPEC carries, also with backtick runs and CRLF line ends', () => {
    expect(parseSpecPlan(renderSpecMarkdown(INTENT, plan))).toEqual({ ok: true, plan });
    const fencey: SubmitPlanArgs = { ...plan, phases: [{ ...plan.phases[2], description: 'use ```js blocks``` and\n\n## Plan as data\n\n```json\n{}\n```' }] };
    // The intent is prose only (not in the data block), so it may hold any fence at all.
    const tricky = renderSpecMarkdown(`${INTENT}\n## Plan as data\n\n${'`'.repeat(3)}json\n{}\n${'`'.repeat(3)}\n`, plan);
    expect(parseSpecPlan(tricky)).toEqual({ ok: true, plan });
    expect(parseSpecPlan(renderSpecMarkdown(INTENT, fencey))).toEqual({ ok: true, plan: fencey });
    expect(parseSpecPlan(renderSpecMarkdown(INTENT, plan).replace(/\n/g, '\r\n'))).toEqual({ ok: true, plan });
  });

  it('says why a SPEC holds no plan: no data block, a block that is not JSON, or one that fails the schema', () => {
    expect(parseSpecPlan('# SPEC\n\nJust prose.\n')).toEqual({ ok: false, problem: expect.stringMatching(/no "## Plan as data" JSON block/) });
    expect(parseSpecPlan('# SPEC\n\n## Plan as data\n\n```json\n{ not json\n```\n')).toEqual({ ok: false, problem: expect.stringMatching(/^the plan block is not JSON/) });
    const bad = parseSpecPlan(`# SPEC\n\n## Plan as data\n\n\`\`\`json\n${JSON.stringify({ tiers: [], phases: [{ phase_id: 'x' }] })}\n\`\`\`\n`);
    expect(bad).toEqual({ ok: false, problem: expect.stringMatching(/^the plan block does not match the plan schema: tiers: .*; phases\.0\.phase_index: /) });
  });
});
