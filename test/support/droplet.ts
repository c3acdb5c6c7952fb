import fs, { mkdirSync } from 'node:fs';
import path from 'node:path';
import { init } from 'isomorphic-git';
import { type DemoDeployer, startDemoDeployer } from '../../apps/cli/src/demo-deployer.js';
import { type DemoRegistry, startDemoRegistry } from '../../apps/cli/src/demo-registry.js';
import { pathWithoutGit, runCli } from './processes.js';
import { http } from './supervisor.js';
import { waitFor } from './wait.js';

/** An empty git repository (no commit), as a build's workspace may be. */
export async function emptyRepository(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await init({ fs, dir, defaultBranch: 'main' });
  return dir;
}

/** The hooks of a build body that reach the targets below (the demo uses them too, so they live with it). */
export { dropletHooks } from '../../apps/cli/src/demo-droplet.js';

/** The local deploy target and registry of a droplet test. */
export interface DropletTargets {
  deployer: DemoDeployer;
  registry: DemoRegistry;
  close(): Promise<void>;
}

export async function startDropletTargets(root: string, repos: string[]): Promise<DropletTargets> {
  const quiet = () => undefined;
  const deployer = await startDemoDeployer({ root: path.join(root, 'deployments'), repos, log: quiet });
  const registry = await startDemoRegistry({ log: quiet });
  return {
    deployer,
    registry,
    close: async () => {
      await deployer.close();
      await registry.close();
    },
  };
}

/** The environment of an executor process talking to the scripted LLM server (no git on PATH). */
export function executorEnv(home: string, llm: { openaiBaseUrl: string; anthropicBaseUrl: string }): NodeJS.ProcessEnv {
  return {
    PATH: pathWithoutGit(),
    HOME: home,
    OPENAI_API_KEY: 'sk-droplet-openai-0001',
    ANTHROPIC_API_KEY: 'sk-ant-droplet-0001',
    OPENAI_BASE_URL: llm.openaiBaseUrl,
    ANTHROPIC_BASE_URL: llm.anthropicBaseUrl,
    AUTOPACK_LOG_LEVEL: 'warn',
  };
}

/** Starts an executor serving a build until its run ends. */
export function startBuildExecutor(buildId: string, repo: string, apiUrl: string, env: NodeJS.ProcessEnv, id = `exec-${buildId}`) {
  return runCli(['executor', '--run-id', buildId, '--workspace', repo, '--api-url', apiUrl, '--poll-interval', '1', '--executor-id', id], env, 240_000);
}

/** Waits until the build's status is one of `statuses`; returns the status answer. */
export async function waitForBuild(apiUrl: string, buildId: string, statuses: string[], timeoutMs = 180_000): Promise<any> {
  return waitFor(
    `build ${buildId} ${statuses.join('|')}`,
    async () => {
      const r = await http(apiUrl, 'GET', `/executor/builds/${buildId}/status`);
      return statuses.includes(r.body?.status) ? r.body : undefined;
    },
    { timeoutMs, everyMs: 250 },
  );
}
