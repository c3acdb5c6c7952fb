/*
 * pg-boss 10 requires node:timers/promises lazily inside its delay(), and its manager keeps
 * polling for stopped workers for up to a second after stop() has resolved. A test file that
 * closes its supervisor at its end can then reach that require after Jest has torn the
 * environment down, which crashes the file after all its tests passed. pg-boss's modules
 * take delay() by destructuring when they load, so it is replaced here, before any loads,
 * with the same function bound to timers loaded now. Test-only: production never tears down.
 * CommonJS on purpose: it must go through Jest's own module registry, as pg-boss does.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
/* global AbortController */
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');

const tools = require(path.join(path.dirname(require.resolve('pg-boss')), 'tools.js'));
tools.delay = function delay(ms, error) {
  const ac = new AbortController();
  const promise = new Promise((resolve, reject) => {
    sleep(ms, null, { signal: ac.signal })
      .then(() => (error ? reject(new Error(error)) : resolve()))
      .catch(resolve);
  });
  promise.abort = () => {
    if (!ac.signal.aborted) ac.abort();
  };
  return promise;
};
