import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const RELIABILITY = path.resolve('.autopack/reliability-results.json');

// Prints the reliability suite's numbers, then the plain closing line CI tooling reads:
// "N passed, N failed[, N skipped]".
export default class SummaryReporter {
  onRunStart() {
    rmSync(RELIABILITY, { force: true });
  }

  onRunComplete(_contexts, results) {
    if (existsSync(RELIABILITY)) {
      const all = JSON.parse(readFileSync(RELIABILITY, 'utf8'));
      process.stdout.write('\nReliability suite:\n');
      for (const [scenario, numbers] of Object.entries(all)) {
        process.stdout.write(`  ${scenario}: ${Object.entries(numbers).map(([k, v]) => `${k}=${v}`).join(', ')}\n`);
      }
    }
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`\n${results.numPassedTests} passed, ${results.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}
