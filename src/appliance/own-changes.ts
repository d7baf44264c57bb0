/**
 * Which of the changes a watcher saw still need a run? The question that keeps watch mode from
 * chasing its own tail: a run copies files into a watched folder, inotify reports them, and those
 * reports must not start another run, while a person's edit made during the same run must.
 *
 * The answer needs no bookkeeping of what the run wrote: the snapshot a run commits *is* what it
 * left on each side. A changed path needs a run exactly when what the disk holds there now differs
 * from the committed snapshot:
 *   - a file whose size and modification time equal its snapshot entry is in sync (the run wrote
 *     it, or it came back to the synced version): no run;
 *   - a file absent from the snapshot, or differing from it: a run (a person's edit, also one made
 *     during the run after rclone's copy, which changes the time);
 *   - a path that is gone: a run only if the snapshot still has it, or files below it (the run's
 *     own removals and renames, and its scratch files, are not in the snapshot);
 *   - a folder: whatever its files say (a folder a person moved in is reported as the folder alone);
 *     an empty folder needs no run (empty folders are not synced).
 * The check runs when a run is due, so events that arrive late (after the run's end) are judged
 * against the same snapshot. A run that failed before committing left the old snapshot: its copies
 * then count as changes, and the follow-up finishes the job.
 *
 * The cost is one read of the snapshot per due check, less than the listing the run would do;
 * only the entries at or below a changed path are kept from it.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readSnapshot } from '../state/snapshot.ts';
import type { FileMeta, Listing, Side } from '../model.ts';

/** Changed paths per watched side, relative to that side's root, '/'-separated. */
export type ChangedPaths = Partial<Record<Side, ReadonlySet<string>>>;

export interface WatchedRoots {
  readonly path1?: string;
  readonly path2?: string;
}

/** Past this many files below changed folders, the check gives up and says a run is needed. */
const MAX_FILES_WALKED = 20_000;
/** Local file systems store times finer than rclone's listing, which keeps milliseconds. */
const MTIME_TOLERANCE_MS = 1;

/** The changed paths the committed snapshot does not explain (an empty result: no run is needed). */
export async function unexplainedChanges(changed: ChangedPaths, snapshotFile: string, roots: WatchedRoots): Promise<Record<Side, Set<string>>> {
  const result: Record<Side, Set<string>> = { path1: new Set(), path2: new Set() };
  // Only the entries at or below a changed path: the check never holds the whole snapshot.
  const snapshot = await readSnapshot(snapshotFile, { only: atOrBelowAny(changed) }).catch(() => undefined);
  for (const side of ['path1', 'path2'] as const) {
    const paths = changed[side];
    const root = roots[side];
    if (!paths || paths.size === 0 || root === undefined) continue;
    if (!snapshot) {
      // No committed state to compare with (first run, or unreadable): every change counts.
      for (const path of paths) result[side].add(path);
      continue;
    }
    const listing = snapshot[side];
    const gone: string[] = [];
    let walked = 0;
    for (const path of paths) {
      const state = await localState(join(root, path));
      if (state === 'absent') {
        if (listing.has(path)) result[side].add(path);
        else gone.push(path);
      } else if (state === 'folder') {
        const files = await filesBelow(root, path, MAX_FILES_WALKED - walked);
        if (files === undefined) {
          result[side].add(path);
          continue;
        }
        walked += files.length;
        if (files.some((file) => !inSync(listing.get(file.path), file))) result[side].add(path);
      } else if (state !== 'other' && !inSync(listing.get(path), state)) {
        result[side].add(path);
      }
    }
    for (const path of foldersStillListed(listing, gone)) result[side].add(path);
  }
  return result;
}

interface DiskFile {
  readonly size: number;
  readonly mtimeMs: number;
}

/** 'other': a symlink, a socket…, which rclone's local backend skips. */
async function localState(absolute: string): Promise<DiskFile | 'absent' | 'folder' | 'other'> {
  try {
    const info = await lstat(absolute);
    if (info.isDirectory()) return 'folder';
    if (!info.isFile()) return 'other';
    return { size: info.size, mtimeMs: info.mtimeMs };
  } catch {
    return 'absent';
  }
}

function inSync(entry: FileMeta | undefined, disk: DiskFile): boolean {
  return entry !== undefined && entry.size === disk.size && Math.abs(entry.mtime - Math.floor(disk.mtimeMs)) <= MTIME_TOLERANCE_MS;
}

/** The files below a folder (relative to the root), or undefined past `limit`. */
async function filesBelow(root: string, folder: string, limit: number): Promise<(DiskFile & { path: string })[] | undefined> {
  const files: (DiskFile & { path: string })[] = [];
  const pending = [folder];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    const entries = await readdir(join(root, dir), { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        pending.push(path);
      } else if (entry.isFile()) {
        const state = await localState(join(root, path));
        if (typeof state === 'object') files.push({ path, ...state });
        if (files.length > limit) return undefined;
      }
    }
  }
  return files;
}

/** Whether a path is one of the changed ones (on either side), or lies below one. */
function atOrBelowAny(changed: ChangedPaths): (path: string) => boolean {
  const wanted = new Set([...(changed.path1 ?? []), ...(changed.path2 ?? [])]);
  return (path) => {
    if (wanted.has(path)) return true;
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      if (wanted.has(path.slice(0, slash))) return true;
    }
    return false;
  };
}

/** Of paths that are gone, those the snapshot still holds files below (a folder removed). */
function foldersStillListed(listing: Listing, gone: readonly string[]): string[] {
  if (gone.length === 0) return [];
  const wanted = new Set(gone);
  const found = new Set<string>();
  for (const path of listing.keys()) {
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      const ancestor = path.slice(0, slash);
      if (wanted.has(ancestor)) found.add(ancestor);
    }
  }
  return [...found];
}
