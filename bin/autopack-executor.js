#!/usr/bin/env node
// `autopack-executor ...` is `autopack executor ...`.
process.argv.splice(2, 0, 'executor');
await import('./autopack.js');
