import { randomBytes } from 'node:crypto';
import nodeFs from 'node:fs';
import path from 'node:path';

const fsp = nodeFs.promises;

/** The `.git` directory `file` lies in, or undefined for a working-tree path. */
function gitDirOf(file: string): string | undefined {
  const parts = path.resolve(file).split(path.sep);
  const i = parts.lastIndexOf('.git');
  return i > 0 && i < parts.length - 1 ? parts.slice(0, i + 1).join(path.sep) : undefined;
}

/**
 * isomorphic-git writes objects, refs and the index in place, and skips writing an object
 * whose file already exists. A process killed mid-write (an executor SIGKILLed during a
 * commit) would leave a truncated object that a later commit of the same content silently
 * reuses, or a truncated ref: a corrupt repository. Files inside `.git` are therefore
 * written to a temporary file in the `.git` directory (where git ignores strays) and renamed
 * into place, so every object and ref is either whole or absent. Working-tree files are
 * written directly: an interrupted attempt's files are restored from the in-flight marker.
 */
async function writeFile(file: string, data: string | Uint8Array, options?: nodeFs.WriteFileOptions): Promise<void> {
  const gitDir = gitDirOf(file);
  if (!gitDir) return fsp.writeFile(file, data, options);
  const tmp = path.join(gitDir, `autopack-tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await fsp.writeFile(tmp, data, options);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * {@link writeFile} for a file inside `.git`, synchronously: the small objects and the index
 * the commit path writes cost less than a thread-pool round trip each this way.
 */
export function writeGitFileSync(file: string, data: Uint8Array | Uint8Array[]): void {
  const gitDir = gitDirOf(file);
  if (!gitDir) throw new Error(`${file} is not inside a .git directory`);
  const tmp = path.join(gitDir, `autopack-tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    if (Array.isArray(data)) {
      // Pieces written in one go, without first copying them into one buffer.
      const fd = nodeFs.openSync(tmp, 'w');
      try {
        let queue = data.filter((piece) => piece.length > 0);
        while (queue.length > 0) {
          // At most IOV_MAX pieces per call; a short write continues where it stopped.
          const batch = queue.slice(0, 1024);
          let written = nodeFs.writevSync(fd, batch);
          let done = 0;
          while (done < batch.length && written >= batch[done].length) written -= batch[done++].length;
          queue = queue.slice(done);
          if (written > 0) queue[0] = queue[0].subarray(written);
        }
      } finally {
        nodeFs.closeSync(fd);
      }
    } else nodeFs.writeFileSync(tmp, data);
    nodeFs.renameSync(tmp, file);
  } catch (err) {
    nodeFs.rmSync(tmp, { force: true });
    throw err;
  }
}

const STRAY = /^autopack-tmp-(\d+)-[0-9a-f]+$/;

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files that writers killed between write and rename left in the
 * repository's `.git` (git ignores them, but they take space). A file is removed only when
 * the process named in it is gone, so a live writer's file is never touched. Returns how
 * many were removed.
 */
export async function removeStrayTempFiles(repoDir: string): Promise<number> {
  const gitDir = path.join(repoDir, '.git');
  let names: string[];
  try {
    names = await fsp.readdir(gitDir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const m = STRAY.exec(name);
    if (!m || processIsAlive(Number(m[1]))) continue;
    await fsp.rm(path.join(gitDir, name), { force: true });
    removed++;
  }
  return removed;
}

/** The file system every isomorphic-git call gets: node's, with crash-safe writes inside `.git`. */
export const gitFs = {
  promises: {
    readFile: fsp.readFile.bind(fsp),
    writeFile,
    mkdir: fsp.mkdir.bind(fsp),
    rmdir: fsp.rmdir.bind(fsp),
    rm: fsp.rm.bind(fsp),
    unlink: fsp.unlink.bind(fsp),
    stat: fsp.stat.bind(fsp),
    lstat: fsp.lstat.bind(fsp),
    readdir: fsp.readdir.bind(fsp),
    readlink: fsp.readlink.bind(fsp),
    symlink: fsp.symlink.bind(fsp),
    chmod: fsp.chmod.bind(fsp),
  },
};
