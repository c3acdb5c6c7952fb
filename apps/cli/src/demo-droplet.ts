import type { SubmitPlanArgs } from '@app/contracts';
import type { LlmScriptInput } from '@app/testing';
import { DEMO_SERVICE_NAME, DEMO_SERVICE_TEST_COMMAND, demoServiceFiles } from './demo-service-files.js';

/** The sentence the demo's droplet build starts from. */
export const DROPLET_INTENT = `Build ${DEMO_SERVICE_NAME}: a tiny HTTP service with GET /health answering {"status":"ok"} and GET / answering a greeting, with a test, runnable with node server.js.`;

/** The id of the one planned phase (its builder and auditor replies match on it). */
export const DROPLET_PHASE_ID = 'hello-service';

/** The plan the scripted planner submits: one tier, one phase that writes the service and its test. */
export function dropletPlan(): SubmitPlanArgs {
  const files = Object.keys(demoServiceFiles()).filter((p) => p !== 'README.md');
  return {
    tiers: [{ tier_id: 'service', tier_index: 0, name: 'The service', description: 'The HTTP service and its test' }],
    phases: [
      {
        phase_id: DROPLET_PHASE_ID,
        phase_index: 0,
        tier_id: 'service',
        name: 'Write the HTTP service',
        description: `Write ${DEMO_SERVICE_NAME}: app.js (the server), server.js (listens on PORT), a node:test test, and package.json.`,
        task_category: 'feature_scaffolding',
        complexity: 'low',
        scope: { paths: files },
        acceptance_criteria: ['GET /health answers 200 {"status":"ok"}', 'GET / answers a greeting', `${DEMO_SERVICE_TEST_COMMAND} passes`],
        ci: { command: DEMO_SERVICE_TEST_COMMAND, timeout_s: 120 },
      },
    ],
  };
}

/**
 * The scripted planner, builder and auditor replies of a droplet build of the demo service.
 * `builds` is how many builds the script serves (each reply may be played that many times);
 * `greeting` is the service's greeting (tests deploy a second, different version).
 */
export function dropletScript(opts: { builds?: number; greeting?: string } = {}): LlmScriptInput {
  const times = opts.builds ?? 1;
  const edits = Object.entries(demoServiceFiles(opts.greeting))
    .filter(([p]) => p !== 'README.md')
    .map(([path, content]) => ({ path, action: 'create', content }));
  return {
    replies: [
      { tool: 'submit_plan', arguments: dropletPlan() as unknown as Record<string, unknown>, usage: { input_tokens: 1800, output_tokens: 400 }, times },
      {
        tool: 'submit_changes',
        match: `# Phase ${DROPLET_PHASE_ID}:`,
        arguments: { summary: `Write ${DEMO_SERVICE_NAME} with its test`, edits },
        usage: { input_tokens: 2200, output_tokens: 900 },
        times,
      },
      {
        tool: 'submit_review',
        match: `# Phase ${DROPLET_PHASE_ID}:`,
        arguments: { approved: true, summary: 'The service answers /health and / and is tested.', confidence: 'high', issues: [] },
        usage: { input_tokens: 1500, output_tokens: 100 },
        times: times * 2,
      },
    ],
  };
}

/** Where a droplet build's hooks go: the demo deployer and the demo registry (anything with their URLs). */
export interface DropletHookTargets {
  deployer: { url: string };
  registry: { url: string };
}

/**
 * The hooks of a build body (CONTRACT.md section 8) that deploys `repo` through the demo
 * deployer, checks health through it, registers with the demo registry, and rolls back
 * through the deployer. `dropletName`, when given, is sent to the registry as is.
 */
export function dropletHooks(t: DropletHookTargets, repo: string, opts: { dropletName?: string } = {}) {
  return {
    deploy: { url: `${t.deployer.url}/deploy`, body: { build_id: '{{build_id}}', droplet_id: '{{droplet_id}}', commit_sha: '{{commit_sha}}', repo, branch: '{{branch}}' }, timeout_s: 30, retries: 1 },
    health_check: { url: `${t.deployer.url}/builds/{{build_id}}/health`, expect_status: 200, timeout_s: 10 },
    register: {
      url: `${t.registry.url}/register`,
      body: {
        build_id: '{{build_id}}',
        droplet_id: '{{droplet_id}}',
        ...(opts.dropletName ? { droplet_name: opts.dropletName } : {}),
        deployment_url: '{{deployment_url}}',
        commit_sha: '{{commit_sha}}',
      },
    },
    rollback: { url: `${t.deployer.url}/rollback`, body: { build_id: '{{build_id}}' }, retries: 1 },
  };
}
