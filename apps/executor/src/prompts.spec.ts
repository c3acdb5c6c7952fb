import { planningCategories } from '@app/domain';
import { PLANNER_SYSTEM_PROMPT, type PlannerPromptInput, plannerPrompt } from './prompts.js';

const base: PlannerPromptInput = {
  intent: 'A tiny HTTP service with a health route.',
  repository: { files: [], truncated: false },
  categories: planningCategories(),
  budgets: { tokensLeft: 4_500_000, costLeftUsd: null, maxPhases: 12 },
};

describe(plannerPrompt.name, () => {
  it('holds the intent, the category table and the budgets, and asks for submit_plan', () => {
    const prompt = plannerPrompt(base);
    expect(prompt.startsWith('# Intent\nA tiny HTTP service with a health route.\n\n')).toBe(true);
    expect(prompt).toContain('| task_category | high risk | complexity | CI profile | builder attempts | incident token cap |');
    expect(prompt).toContain('| security_auth_change (also security_auth) | yes | high | strict, CI required | 2 | 800,000 |');
    expect(prompt).toContain('| docs | no | low | normal | 2 | 200,000 |');
    expect(prompt).toContain('| generic | no | medium | normal | 3 | 500,000 |');
    expect(prompt).toContain('- Tokens left for the planned phases: 4,500,000');
    expect(prompt).toContain('- Phases: at most 12');
    expect(prompt).toContain('- Cost: no cap');
    expect(prompt.endsWith('Call submit_plan now.')).toBe(true);
    expect(PLANNER_SYSTEM_PROMPT).toContain('submit_plan');
  });

  it('says the repository is empty, or maps its files with their sizes', () => {
    expect(plannerPrompt(base)).toContain('# Repository\nThe repository is empty');
    const mapped = plannerPrompt({ ...base, repository: { files: [{ path: 'package.json', bytes: 120 }, { path: 'src/server.js', bytes: 2048 }], truncated: false } });
    expect(mapped).toContain('# Repository (2 files: path, bytes)\n- package.json (120)\n- src/server.js (2048)\n\n');
    expect(mapped).not.toContain('The repository is empty');
    const cut = plannerPrompt({ ...base, repository: { files: [{ path: 'a.txt', bytes: 1 }], truncated: true } });
    expect(cut).toContain('# Repository (1+ files: path, bytes)\n- a.txt (1)\n- ... more files not listed');
  });

  it("names the cost left and the run's CI command when there are", () => {
    const prompt = plannerPrompt({ ...base, budgets: { ...base.budgets, costLeftUsd: 3.5 }, runCi: { command: 'npm test' } });
    expect(prompt).toContain('- Cost left: $3.50');
    expect(prompt).toContain("- Phases without ci use the run's CI command: `npm test`");
  });

  it('carries the feedback of failed attempts', () => {
    const prompt = plannerPrompt({
      ...base,
      previousAttempts: [{ attempt: 1, outcome: 'builder_failed', reason: 'invalid plan', feedback: 'fix every problem:\n- phase p1: tier "x" is not in the plan', edits_hash: null, created_at: '2026-01-01T00:00:00Z' }],
    });
    expect(prompt).toContain('## Attempt 1 failed (builder_failed)\nfix every problem:\n- phase p1: tier "x" is not in the plan');
  });
});
