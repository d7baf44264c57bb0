/**
 * `rclonesync trash list [--json]` and `rclonesync trash restore PATH [--side S] [--from STAMP]`:
 * what the sync moved to each side's trash, and the way back. A restore moves the version back to
 * its path on its own side (beside it, under a conflict-style name, when the path is taken now);
 * the next run carries it across as a change. It holds the pair's lock, so it never races a run.
 */
import type { EngineConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { joinRemote, Rclone, RcloneError } from '../rclone/rclone.ts';
import { acquireLock } from '../state/lock.ts';
import { ensurePairDir, pairId, pairPaths } from '../state/pair.ts';
import { conflictName } from '../sync/reconcile.ts';
import { isStamp, trashRoot } from '../sync/trash.ts';
import { SIDES, type Side } from '../model.ts';

export interface TrashEntry {
  readonly side: Side;
  /** The run that moved it there (compact UTC). */
  readonly stamp: string;
  /** Its path relative to the side's root. */
  readonly path: string;
  readonly size: number;
  /** Its own modification time, kept by the move. */
  readonly modTime: string;
}

export interface TrashRequest {
  readonly action: 'list' | 'restore';
  readonly path?: string;
  readonly side?: Side;
  readonly from?: string;
  readonly json: boolean;
}

/** Reads `trash list|restore ...` from the command's positionals and flags; exit 2 for anything else. */
export function parseTrashRequest(positionals: readonly string[], flags: { side?: string; from?: string; json: boolean }): TrashRequest {
  const [action, path, extra] = positionals;
  if (action !== 'list' && action !== 'restore') {
    throw new ConfigError(`trash needs "list" or "restore PATH" (got ${action === undefined ? 'nothing' : `"${action}"`}): rclonesync trash list [--json] | rclonesync trash restore PATH [--side path1|path2] [--from STAMP]`);
  }
  if (flags.side !== undefined && flags.side !== 'path1' && flags.side !== 'path2') throw new ConfigError(`--side must be path1 or path2 (got "${flags.side}")`);
  if (flags.from !== undefined && !isStamp(flags.from)) throw new ConfigError(`--from must be a run stamp such as 20261201T083000Z, as "trash list" shows (got "${flags.from}")`);
  if (action === 'list') {
    if (path !== undefined) throw new ConfigError(`unexpected argument "${path}" after "trash list"`);
    return { action, json: flags.json, ...(flags.side ? { side: flags.side as Side } : {}) };
  }
  if (path === undefined || path.trim() === '') throw new ConfigError('trash restore needs the PATH to restore, relative to the synced folder (as "trash list" shows it)');
  if (extra !== undefined) throw new ConfigError(`unexpected argument "${extra}" after "trash restore ${path}": quote a path that holds spaces`);
  return { action, path: path.replace(/^\/+/, ''), json: flags.json, ...(flags.side ? { side: flags.side as Side } : {}), ...(flags.from ? { from: flags.from } : {}) };
}

export async function trashCommand(config: EngineConfig, request: TrashRequest, logger: Logger, out: NodeJS.WritableStream): Promise<number> {
  const paths = pairPaths(config.stateDir, pairId(config.path1, config.path2));
  await ensurePairDir(paths);
  const rclone = new Rclone({ binary: config.rcloneBinary, logger, transferArgs: config.rcloneArgs, workDir: paths.tmp });
  const roots = { path1: config.path1, path2: config.path2 };
  const trashes = { path1: trashRoot(config.path1, config.trashPaths.path1), path2: trashRoot(config.path2, config.trashPaths.path2) };
  try {
    if (request.action === 'list') {
      const entries = await listTrash(rclone, trashes, request.side ? [request.side] : SIDES);
      out.write(request.json ? `${JSON.stringify(entries)}\n` : formatEntries(entries));
      return 0;
    }
    const lock = await acquireLock(paths, () => {});
    try {
      const entries = await listTrash(rclone, trashes, request.side ? [request.side] : SIDES);
      const entry = entries.find((e) => e.path === request.path && (!request.from || e.stamp === request.from));
      if (!entry) {
        const where = `${request.side ? ` on ${request.side}` : ''}${request.from ? ` from ${request.from}` : ''}`;
        throw new ConfigError(`no trashed version of "${request.path}"${where}: "rclonesync trash list" shows what the trash holds`);
      }
      const target = await freeName(rclone, roots[entry.side], entry);
      await rclone.moveTo(joinRemote(joinRemote(trashes[entry.side], entry.stamp), entry.path), joinRemote(roots[entry.side], target));
      const message = target === entry.path ? `restored ${entry.path} on ${entry.side} (from ${entry.stamp})` : `${entry.path} exists on ${entry.side}: restored the version from ${entry.stamp} beside it as ${target}`;
      out.write(request.json ? `${JSON.stringify({ ...entry, restoredTo: target })}\n` : `${message}; the next run carries it across\n`);
      return 0;
    } finally {
      await lock.release();
    }
  } finally {
    await rclone.dispose();
  }
}

/** Every trashed version on the given sides, newest run first (then by path). */
export async function listTrash(rclone: Rclone, trashes: Record<Side, string>, sides: readonly Side[]): Promise<TrashEntry[]> {
  const entries: TrashEntry[] = [];
  for (const side of sides) {
    try {
      for await (const batch of rclone.list(trashes[side])) {
        for (const { path, meta } of batch) {
          const slash = path.indexOf('/');
          const stamp = path.slice(0, slash);
          if (slash === -1 || !isStamp(stamp)) continue;
          entries.push({ side, stamp, path: path.slice(slash + 1), size: meta.size, modTime: new Date(meta.mtime).toISOString() });
        }
      }
    } catch (error) {
      if (!(error instanceof RcloneError && error.directoryNotFound)) throw error;
    }
  }
  return sortNewestFirst(entries);
}

export function sortNewestFirst(entries: TrashEntry[]): TrashEntry[] {
  return entries.sort((a, b) => (a.stamp !== b.stamp ? (a.stamp < b.stamp ? 1 : -1) : a.path < b.path ? -1 : a.path > b.path ? 1 : a.side < b.side ? -1 : 1));
}

/** The entry's own path when it is free on its side now, else the first free conflict-style name beside it. */
async function freeName(rclone: Rclone, root: string, entry: TrashEntry): Promise<string> {
  const candidates = [entry.path, ...Array.from({ length: 20 }, (_, i) => conflictName(entry.path, entry.side, entry.stamp, i + 1))];
  const taken = await rclone.listPaths(root, candidates);
  const free = candidates.find((name) => !taken.has(name));
  if (!free) throw new ConfigError(`"${entry.path}" and its 20 restore names are all taken on ${entry.side}: move one away first`);
  return free;
}

function formatEntries(entries: readonly TrashEntry[]): string {
  if (entries.length === 0) return 'the trash is empty\n';
  const lines = [`${'side'.padEnd(6)} ${'stamp'.padEnd(17)} ${'size'.padStart(10)}  path`];
  for (const e of entries) lines.push(`${e.side.padEnd(6)} ${e.stamp.padEnd(17)} ${String(e.size).padStart(10)}  ${e.path}`);
  return `${lines.join('\n')}\n`;
}
