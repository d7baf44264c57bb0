/**
 * The trash: whatever a run removes or overwrites on a side goes to that side's trash first,
 * `<trash root>/<run stamp>/<relative path>`, one folder per run, and is purged once the stamp is
 * older than the retention. Pure: names, exclusions and retention; the moves are propagation's.
 */
import { joinRemote } from '../rclone/rclone.ts';

/** The folder inside each root that holds its trash unless SYNC_TRASH_PATH1/2 says otherwise. */
export const TRASH_FOLDER = '.rclonesync-trash';

const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The run's start in compact UTC (20261201T083000Z): trash folders and conflict names use it. */
export function compactStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** The moment a stamp names, or undefined when the name is not a stamp (a user's own folder). */
export function stampTime(name: string): number | undefined {
  const m = STAMP.exec(name);
  if (!m) return undefined;
  const time = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(time) ? undefined : time;
}

export const isStamp = (name: string): boolean => stampTime(name) !== undefined;

export function trashRoot(root: string, configured: string | undefined): string {
  return configured ?? joinRemote(root, TRASH_FOLDER);
}

/**
 * The folders (relative to the root) a side's listing leaves out, whatever the user's filters
 * say, so that its trash stays out of the sync: the default folder always, and a configured trash
 * path that lies inside the root.
 */
export function trashFolders(root: string, configured: string | undefined): string[] {
  const folders = [TRASH_FOLDER];
  if (configured) {
    const base = root.endsWith('/') || root.endsWith(':') ? root : `${root}/`;
    if (configured.startsWith(base)) {
      const inside = configured.slice(base.length).replace(/\/+$/, '');
      if (inside && inside !== TRASH_FOLDER) folders.push(inside);
    }
  }
  return folders;
}

/** The run folders to purge: names that are stamps older than `days` before `now`. Others are left alone. */
export function expiredStamps(names: readonly string[], now: number, days: number): string[] {
  const limit = now - days * 86_400_000;
  return names.filter((name) => {
    const time = stampTime(name);
    return time !== undefined && time < limit;
  });
}
