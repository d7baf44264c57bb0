import { createHash } from 'node:crypto';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { accessProblem, currentRunner, describeAccessProblem, nearestExisting } from '../permissions.ts';

/**
 * Each pair of paths gets its own folder in the state directory, so several pairs (several
 * containers, or several CronJobs) can share one volume. The id is readable and stable: a
 * sanitized hint of both paths plus a hash of the exact pair.
 */
export function pairId(path1: string, path2: string): string {
  const hash = createHash('sha256').update(`${path1}\0${path2}`).digest('hex').slice(0, 12);
  const hint = (p: string) =>
    p
      .replace(/^:[^:]*:/, (m) => m.split(',')[0]!.replace(/^:/, '')) // ":sftp,host=...:" -> "sftp"
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(-24) || 'root';
  return `${hint(path1)}__${hint(path2)}-${hash}`;
}

export interface PairPaths {
  readonly dir: string;
  readonly snapshot: string;
  readonly history: string;
  readonly journal: string;
  /** Scratch space of the run holding the lock (file lists for rclone); emptied at each start. */
  readonly tmp: string;
  /** The running run's phase and counts, for `status` in another process (progress.ts). */
  readonly progress: string;
  /** Who holds the lock (lock.ts). */
  readonly lockOwner: string;
  readonly lockDir: string;
  /** What each side's trash holds, for /status and /metrics (trash-stats.ts). */
  readonly trashStats: string;
  /** The listings the snapshot describes, as digests: a no-change run's shortcut (listing-digests.ts). */
  readonly listingDigests: string;
  /** What `rclone backend features` said of local sides, and under what (rclone/local-side.ts). */
  readonly localFeatures: string;
}

export function pairPaths(stateDir: string, id: string): PairPaths {
  const dir = join(stateDir, id);
  return {
    dir,
    snapshot: join(dir, 'snapshot.jsonl'),
    history: join(dir, 'history.jsonl'),
    journal: join(dir, 'journal.jsonl'),
    tmp: join(dir, 'tmp'),
    progress: join(dir, 'progress.json'),
    lockOwner: join(dir, 'run.owner'),
    lockDir: join(dir, 'run.lock'),
    trashStats: join(dir, 'trash.json'),
    localFeatures: join(dir, 'local-features.json'),
    listingDigests: join(dir, 'listing-digests.json'),
  };
}

export async function ensurePairDir(paths: PairPaths): Promise<void> {
  try {
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // A recursive mkdir reports a read-only or forbidden parent as ENOENT: find the real cause.
    const blocked = await nearestExisting(paths.dir);
    const problem = await accessProblem(blocked, 'folder', 'read-write').catch(() => undefined);
    if (!problem) throw error;
    throw new ConfigError(describeAccessProblem(`the state folder "${paths.dir}" cannot be created: "${blocked}"`, problem, currentRunner()), { cause: error });
  }
}

/** The pair folders in a state directory: those holding a snapshot, a run history or a run's lock (a first run). */
export async function pairDirsIn(stateDir: string): Promise<string[]> {
  const entries = await readdir(stateDir, { withFileTypes: true }).catch(() => []);
  const found: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const paths = pairPaths(stateDir, entry.name);
    const marks = await Promise.all([paths.history, paths.snapshot, paths.lockOwner].map(exists));
    if (marks.some(Boolean)) found.push(entry.name);
  }
  return found.sort();
}

const exists = (path: string) => stat(path).then(() => true, () => false);
