/**
 * Can the uid running rclonesync read or write a path, and if not, why and how to fix it. Used by
 * the start-of-run checks (preflight.ts) and wherever a folder is created, so that a permission
 * problem is always told the same way: the culprit, its owner and mode, the running uid, the fix.
 */
import { constants, existsSync } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface Runner {
  readonly uid: number;
  readonly gid: number;
  /** In a container, a path is the mount point of a host folder: the fix is made on the host. */
  readonly inContainer: boolean;
}

export function currentRunner(): Runner {
  return {
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    inContainer: existsSync('/.dockerenv') || existsSync('/run/.containerenv') || process.env.KUBERNETES_SERVICE_HOST !== undefined,
  };
}

export type Need = 'read' | 'read-write';

export type AccessProblem =
  | { readonly kind: 'missing' }
  | { readonly kind: 'wrong-type'; readonly is: 'file' | 'folder' | 'other' }
  | { readonly kind: 'read-only-fs' }
  /** `at` is the path itself, or the first folder above it that may not be entered. */
  | { readonly kind: 'denied'; readonly at: string; readonly uid: number; readonly gid: number; readonly mode: number; readonly need: Need | 'enter' };

/** What stands between the running uid and `need` on `path` (a folder or a file), if anything. */
export async function accessProblem(path: string, type: 'file' | 'folder', need: Need): Promise<AccessProblem | undefined> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
    if (code === 'EACCES') return (await blockedAncestor(path)) ?? { kind: 'missing' };
    throw error;
  }
  const is = info.isDirectory() ? 'folder' : info.isFile() ? 'file' : 'other';
  // A character device (/dev/null) reads as empty: fine for a file that is only read.
  if (is !== type && !(type === 'file' && need === 'read' && info.isCharacterDevice())) return { kind: 'wrong-type', is };
  const mode = constants.R_OK | (need === 'read-write' ? constants.W_OK : 0) | (type === 'folder' ? constants.X_OK : 0);
  try {
    await access(path, mode);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EROFS') return { kind: 'read-only-fs' };
    if (code !== 'EACCES' && code !== 'EPERM') throw error;
    return { kind: 'denied', at: path, uid: info.uid, gid: info.gid, mode: info.mode & 0o7777, need };
  }
}

/** The nearest folder above `path` that exists: where a missing folder would be created. */
export async function nearestExisting(path: string): Promise<string> {
  let current = dirname(path);
  while (current !== dirname(current)) {
    if (await stat(current).then(() => true, () => false)) return current;
    current = dirname(current);
  }
  return current;
}

async function blockedAncestor(path: string): Promise<AccessProblem | undefined> {
  const chain: string[] = [];
  for (let p = dirname(path); p !== dirname(p); p = dirname(p)) chain.unshift(p);
  for (const folder of chain) {
    const ok = await access(folder, constants.X_OK).then(() => true, () => false);
    if (ok) continue;
    const info = await stat(folder).catch(() => undefined);
    if (!info) return undefined;
    return { kind: 'denied', at: folder, uid: info.uid, gid: info.gid, mode: info.mode & 0o7777, need: 'enter' };
  }
  return undefined;
}

/**
 * One sentence for a person: `subject` (a setting and its value, say) has `problem`, and the fix.
 * `recursive` when the culprit is a folder whose whole content must change owner too.
 */
export function describeAccessProblem(subject: string, problem: AccessProblem, runner: Runner, options: { recursive?: boolean } = {}): string {
  switch (problem.kind) {
    case 'missing':
      return `${subject} does not exist`;
    case 'wrong-type':
      return `${subject} is ${problem.is === 'other' ? 'neither a file nor a folder' : `a ${problem.is}`}`;
    case 'read-only-fs':
      return `${subject} is on a read-only file system; mount it read-write (no ":ro" on its volume)`;
    case 'denied': {
      const what = problem.need === 'enter' ? `cannot be reached: "${problem.at}" may not be entered` : problem.need === 'read' ? 'cannot be read' : 'is not writable';
      const owner = `"${problem.at}" belongs to uid ${problem.uid} (gid ${problem.gid}), mode ${problem.mode.toString(8).padStart(4, '0')}`;
      return `${subject} ${what} by uid ${runner.uid} (gid ${runner.gid}), which runs rclonesync: ${owner}. Fix: ${fixFor(problem, runner, options.recursive ?? false)}`;
    }
  }
}

function fixFor(problem: Extract<AccessProblem, { kind: 'denied' }>, runner: Runner, recursive: boolean): string {
  const where = runner.inContainer ? ' (on the host: to what is mounted there)' : '';
  if (problem.uid === runner.uid) {
    const bits = problem.need === 'read' ? 'u+rX' : problem.need === 'enter' ? 'u+x' : 'u+rwX';
    return `chmod ${recursive ? '-R ' : ''}${bits} "${problem.at}"${where}`;
  }
  const chown = `chown ${recursive ? '-R ' : ''}${runner.uid}:${runner.gid} "${problem.at}"${where}`;
  const runAs = `run rclonesync as its owner: PUID=${problem.uid} and PGID=${problem.gid} in .env with Docker Compose (docker run --user ${problem.uid}:${problem.gid}; runAsUser/runAsGroup in Kubernetes)`;
  return `${chown}, or ${runAs}`;
}
