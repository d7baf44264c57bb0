/**
 * One run per pair at a time. proper-lockfile holds a lock directory whose mtime it refreshes while
 * we run; a run killed with SIGKILL stops refreshing it, and after STALE_MS the next run takes the
 * lock over. On the same host we can do better: the lock records our pid, and a lock whose process
 * is gone is taken over at once.
 */
import lockfile from 'proper-lockfile';
import { hostname } from 'node:os';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { LockHeld } from '../errors.ts';
import type { PairPaths } from './pair.ts';

const STALE_MS = 20_000;
const UPDATE_MS = 5_000;

/** Lock targets this process holds right now (the daemon never overlaps runs, but be exact). */
const heldHere = new Set<string>();

export interface HeldLock {
  release(): Promise<void>;
}

export async function acquireLock(paths: PairPaths, onCompromised: (error: Error) => void): Promise<HeldLock> {
  const ownerFile = paths.lockOwner;
  const lockDir = paths.lockDir;
  await removeLockOfDeadProcess(ownerFile, lockDir);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(paths.lockTarget, {
      realpath: false,
      stale: STALE_MS,
      update: UPDATE_MS,
      retries: 0,
      onCompromised,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
      // The holder writes its owner record just after taking the lock: give it a moment.
      let owner = await readOwner(ownerFile);
      for (let attempt = 0; !owner && attempt < 5; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        owner = await readOwner(ownerFile);
      }
      throw new LockHeld(
        `another run holds the lock for this pair${owner ? ` (pid ${owner.pid} on ${owner.host}, since ${owner.since})` : ''}; lock: ${lockDir}`,
      );
    }
    throw error;
  }
  await writeFile(ownerFile, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
  heldHere.add(lockDir);
  return {
    async release() {
      heldHere.delete(lockDir);
      await rm(ownerFile, { force: true });
      await release().catch(() => {});
    },
  };
}

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

/**
 * The run holding this pair's lock, as another process (`status`) sees it: the lock directory is
 * there and fresh (proper-lockfile refreshes its mtime), and its owner record says who.
 */
export async function lockHolder(paths: PairPaths, now = Date.now()): Promise<LockOwner | undefined> {
  const info = await stat(paths.lockDir).catch(() => undefined);
  if (!info || now - info.mtimeMs > STALE_MS) return undefined;
  const owner = await readOwner(paths.lockOwner);
  if (owner && owner.host === hostname() && !isAlive(owner.pid)) return undefined;
  return owner ?? { pid: 0, host: '?', since: info.mtime.toISOString() };
}

async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

async function removeLockOfDeadProcess(ownerFile: string, lockDir: string): Promise<void> {
  const owner = await readOwner(ownerFile);
  if (!owner || owner.host !== hostname()) return;
  // Our own pid in a lock we do not hold: a previous container with the same hostname, whose
  // process also ran as PID 1, was killed. Another live process cannot have our pid.
  const ours = owner.pid === process.pid;
  if (ours ? heldHere.has(lockDir) : isAlive(owner.pid)) return;
  await rm(lockDir, { recursive: true, force: true });
  await rm(ownerFile, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
