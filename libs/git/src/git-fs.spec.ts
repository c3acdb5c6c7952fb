import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gitFs, removeStrayTempFiles } from './git-fs.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'autopack-gitfs-'));
  mkdirSync(path.join(root, '.git', 'objects', 'ab'), { recursive: true });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const strays = () => readdirSync(path.join(root, '.git')).filter((n) => n.startsWith('autopack-tmp-'));

describe('gitFs', () => {
  it('writes files inside .git whole, leaving no temporary file, and working-tree files directly', async () => {
    const object = path.join(root, '.git', 'objects', 'ab', 'cdef');
    await gitFs.promises.writeFile(object, Buffer.from('object bytes'));
    await gitFs.promises.writeFile(path.join(root, 'README.md'), '# hi\n');
    expect((await gitFs.promises.readFile(object)).toString()).toBe('object bytes');
    expect((await gitFs.promises.readFile(path.join(root, 'README.md'), 'utf8')).toString()).toBe('# hi\n');
    expect(strays()).toEqual([]);
  });

  it('fails without creating the target or leaving a temporary file when the target cannot be replaced', async () => {
    const missingDir = path.join(root, '.git', 'refs', 'heads', 'x');
    await expect(gitFs.promises.writeFile(missingDir, 'sha\n')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(existsSync(missingDir)).toBe(false);
    expect(strays()).toEqual([]);
  });

  it('removes the temporary files of writers that are gone, and only theirs', async () => {
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.on('close', resolve));
    const gitDir = path.join(root, '.git');
    writeFileSync(path.join(gitDir, `autopack-tmp-${dead.pid}-0a1b2c`), 'half an object');
    writeFileSync(path.join(gitDir, `autopack-tmp-${process.pid}-3d4e5f`), 'being written');
    writeFileSync(path.join(gitDir, 'autopack-tmp-notes'), 'not ours');
    expect(await removeStrayTempFiles(root)).toBe(1);
    expect(strays().sort()).toEqual([`autopack-tmp-${process.pid}-3d4e5f`, 'autopack-tmp-notes']);
    expect(await removeStrayTempFiles(path.join(root, 'no-such-repo'))).toBe(0);
  });
});
