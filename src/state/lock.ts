/**
 * One run per pair at a time. The lock is a directory (mkdir either creates it or fails, on every
 * filesystem and across hosts sharing the state volume) whose mtime the holder refreshes while it
 * runs; a run killed with SIGKILL stops refreshing it, and once it is stale (20 s) the next run takes the
 * lock over. On the same host we do better: the lock records our pid, and a lock whose process is
 * gone is taken over at once. (This was proper-lockfile's scheme, with its directory name and
 * times; the package and graceful-fs cost every start ~11 ms to load.)
 */
import { hostname } from 'node:os';
import { mkdir, readFile, rm, rmdir, stat, utimes, writeFile } from 'node:fs/promises';
import { rmdirSync } from 'node:fs';
import { LockHeld } from '../errors.ts';
import type { PairPaths } from './pair.ts';

/** How long a lock stays fresh without a refresh, and how often its holder refreshes it. */
export interface LockTiming {
  readonly staleMs: number;
  readonly updateMs: number;
}

const TIMING: LockTiming = { staleMs: 20_000, updateMs: 5_000 };

/** Lock directories this process holds right now (the daemon never overlaps runs, but be exact). */
const heldHere = new Set<string>();

// A process that exits while holding a lock (process.exit after a fatal error) lets it go at once,
// rather than leaving the next run to wait until it is stale (or for a same-host pid check).
process.once('exit', () => {
  for (const lockDir of heldHere) {
    try {
      rmdirSync(lockDir);
    } catch {
      // Gone already, or not ours to remove any more: the next run decides from its mtime.
    }
  }
});

export interface HeldLock {
  release(): Promise<void>;
}

export async function acquireLock(paths: PairPaths, onCompromised: (error: Error) => void, timing = TIMING): Promise<HeldLock> {
  const ownerFile = paths.lockOwner;
  const lockDir = paths.lockDir;
  await removeLockOfDeadProcess(ownerFile, lockDir);
  if (!(await takeLockDirectory(lockDir, timing.staleMs))) {
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
  heldHere.add(lockDir);
  const refresh = keepFresh(lockDir, (await stat(lockDir)).mtimeMs, timing, (error) => {
    heldHere.delete(lockDir);
    onCompromised(error);
  });
  await writeFile(ownerFile, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
  return {
    async release() {
      refresh.stop();
      const ours = heldHere.delete(lockDir);
      await rm(ownerFile, { force: true });
      // A lock taken over after it went stale is the new holder's: leave it.
      if (ours) await rmdir(lockDir).catch(() => {});
    },
  };
}

/** Creates the lock directory; false when another run holds it (it exists and is fresh). */
async function takeLockDirectory(lockDir: string, staleMs: number): Promise<boolean> {
  try {
    await mkdir(lockDir);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const info = await stat(lockDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (info && info.mtimeMs >= Date.now() - staleMs) return false;
  // Stale (its holder stopped refreshing it), or released between our mkdir and stat: one more try.
  // Two runs taking a stale lock over at the same moment can both get here and both succeed (the
  // second removing the first's new directory); the first then finds at its next refresh that the
  // mtime is not its own, and stops (keepFresh).
  if (info) await rmdir(lockDir).catch(() => {});
  try {
    await mkdir(lockDir);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Refreshes the lock's mtime every `updateMs`. The lock is lost (and `onLost` called once) when its
 * mtime is not the one we last set (another run took it over as stale: we were stalled), when it is
 * gone, or when no refresh succeeded for `staleMs`.
 */
function keepFresh(lockDir: string, mtimeMs: number, { staleMs, updateMs }: LockTiming, onLost: (error: Error) => void): { stop(): void } {
  let stopped = false;
  let lastRefresh = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const lost = (message: string) => {
    stopped = true;
    onLost(Object.assign(new Error(message), { code: 'ECOMPROMISED' }));
  };
  const refresh = async () => {
    try {
      const info = await stat(lockDir);
      if (stopped) return;
      if (info.mtimeMs !== mtimeMs) return lost('another run took the lock over (its mtime is not the one this run set)');
      const now = new Date();
      await utimes(lockDir, now, now);
      if (stopped) return;
      // What the filesystem stored (it may keep whole seconds), for the next comparison.
      mtimeMs = (await stat(lockDir)).mtimeMs;
      lastRefresh = Date.now();
    } catch (error) {
      if (stopped) return;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || lastRefresh + staleMs < Date.now()) return lost(`the lock directory ${code === 'ENOENT' ? 'was removed' : `could not be refreshed (${(error as Error).message})`}`);
      // A passing error (a busy network filesystem): try again soon.
      schedule(1_000);
      return;
    }
    schedule(updateMs);
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => void refresh(), ms);
    timer.unref();
  };
  schedule(updateMs);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
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
 * there and fresh (its holder refreshes its mtime), and its owner record says who.
 */
export async function lockHolder(paths: PairPaths, now = Date.now()): Promise<LockOwner | undefined> {
  const info = await stat(paths.lockDir).catch(() => undefined);
  if (!info || now - info.mtimeMs > TIMING.staleMs) return undefined;
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
