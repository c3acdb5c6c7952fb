/**
 * `npm run bench [-- --quick]`: Autopack's hot paths, each measured beside a baseline taken in
 * the same run (raw SQL on the same database, native git where a binary exists, a bare Node
 * process). Prints a table of ratios and writes it to bench/RESULTS.md. Nothing here asserts a
 * time: the numbers are for reading and comparing between commits.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchGit } from './git.js';
import { benchPromptCache } from './prompt-cache.js';
import type { BenchOptions, BenchRow } from './rows.js';
import { benchExecutor } from './executor.js';
import { benchSupervisor } from './supervisor.js';

/** The sections, in the order they run and print. */
const SECTIONS: { name: string; run: (opts: BenchOptions) => Promise<BenchRow[]> }[] = [
  { name: 'supervisor', run: benchSupervisor },
  { name: 'git', run: benchGit },
  { name: 'prompt-cache', run: benchPromptCache },
  { name: 'executor', run: benchExecutor },
];

async function main(): Promise<void> {
  const opts: BenchOptions = { quick: process.argv.includes('--quick') };
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
  const results: BenchRow[] = [];
  for (const section of SECTIONS) {
    if (only && !only.includes(section.name)) continue;
    const t0 = Date.now();
    results.push(...(await section.run(opts)));
    console.error(`bench: ${section.name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  const header = '| benchmark | baseline | measured | ratio | what the ratio says |\n|---|---|---|---|---|';
  const rows = results.map((r) => `| ${r.name} | ${r.baseline} | ${r.measured} | ${r.ratio.toFixed(2)} | ${r.meaning} |`);
  const machine = `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, PostgreSQL ${process.env.DATABASE_URL ? 'from DATABASE_URL' : 'embedded (fsync off)'}${opts.quick ? ', --quick' : ''}`;
  const table = [header, ...rows].join('\n');
  console.log(`\n${table}\n\n${machine}`);
  // A partial or quick run (--only, --quick) prints but keeps the last full table.
  if (only || opts.quick) return;
  writeFileSync(
    path.resolve('bench/RESULTS.md'),
    `# Benchmark results\n\nLatest \`npm run bench\` (${new Date().toISOString().slice(0, 10)}), on ${machine}.\n` +
      `Each ratio compares with a baseline measured in the same run; see the bench/*.ts file of each section for what it does.\n\n${table}\n`,
  );
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
