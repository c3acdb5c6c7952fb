/**
 * gitFs against a real kill: a child process imports the built module (dist/, so `npm run
 * build` first), which is why this lives in the e2e tier and not next to the code.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'autopack-gitfs-'));
  mkdirSync(path.join(root, '.git', 'objects', 'ab'), { recursive: true });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('gitFs (built module, real process)', () => {
  it('never leaves a truncated object when the writing process is killed mid-write (built module, real process)', async () => {
    const built = path.resolve('dist/libs/git/src/git-fs.js');
    expect(existsSync(built)).toBe(true);
    const object = path.join(root, '.git', 'objects', 'ab', 'big');
    const size = 96 * 1024 * 1024;
    const script = `
      const { gitFs } = await import(${JSON.stringify(pathToFileURL(built).href)});
      const data = Buffer.alloc(${size}, 7);
      process.stdout.write('writing\\n');
      await gitFs.promises.writeFile(process.argv[1], data);
      process.stdout.write('written\\n');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, object], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('writing')) {
          setTimeout(() => child.kill('SIGKILL'), 5);
          resolve();
        }
      });
    });
    await new Promise((resolve) => child.on('close', resolve));
    // Either the kill came first and there is no object, or the write finished and it is whole.
    if (existsSync(object)) expect(statSync(object).size).toBe(size);
    else expect(out).not.toContain('written');
  });
});
