/**
 * The vocabulary every layer shares — the engine (`sync/`), rclone's adapter (`rclone/`), stored
 * state (`state/`) and the appliance — and the lists of choices the settings offer. It imports
 * nothing of ours, so any module may import it without pulling in a layer above its own.
 */

export type Side = 'path1' | 'path2';
export const SIDES: readonly Side[] = ['path1', 'path2'];
export const otherSide = (side: Side): Side => (side === 'path1' ? 'path2' : 'path1');

/** Which way bytes flow: towards path1 or towards path2. */
export type Direction = 'toPath1' | 'toPath2';
export const DIRECTIONS: readonly Direction[] = ['toPath1', 'toPath2'];
export const directionTo = (side: Side): Direction => (side === 'path1' ? 'toPath1' : 'toPath2');

/**
 * What we remember of one file on one side. Kept deliberately small: one of these exists per file
 * per side per listing, so a 1M-file tree holds millions of them. `hash` is '' when not listed,
 * so every instance has the same shape (V8 keeps monomorphic objects compact).
 */
export interface FileMeta {
  readonly size: number;
  /** Milliseconds since the epoch, as the backend reported it. */
  readonly mtime: number;
  /** The one hash type chosen for this pair (`chooseHash` in sync/compare.ts), or ''. */
  readonly hash: string;
}

/** The same record, field for field (not a comparison of versions: see sync/compare.ts for that). */
export const sameRecord = (a: FileMeta, b: FileMeta | undefined): boolean => b !== undefined && (a === b || (a.size === b.size && a.mtime === b.mtime && a.hash === b.hash));

/** Relative path (as rclone prints it, '/'-separated) -> metadata. */
export type Listing = Map<string, FileMeta>;

/** The folder of a path as listing blocks name it: '' for the root, else ending in "/". */
export const folderOf = (path: string): string => path.slice(0, path.lastIndexOf('/') + 1);

/**
 * Whether `path` is directly in `folder` (as folderOf spells it), without making a string: a
 * listing holds a folder's files together, so walking one, most paths are in the last one's folder.
 */
export const inFolder = (path: string, folder: string): boolean => path.startsWith(folder) && path.indexOf('/', folder.length) === -1;

/**
 * Adds every folder above `path` to `folders`, deepest first, stopping at one already there: the
 * set only ever grows this way, so that folder's own parents are in it too. A first run of 100,000
 * files in 1,000 folders makes ~1,100 additions here, not 200,000 (every folder above every file).
 */
export function addFoldersAbove(folders: Set<string>, path: string): void {
  for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
    const folder = path.slice(0, slash);
    if (folders.has(folder)) return;
    folders.add(folder);
  }
}

/** What a plan holds (and, once a run ends, what was done). */
export interface PlanCounts {
  copiesToPath1: number;
  copiesToPath2: number;
  deletesOnPath1: number;
  deletesOnPath2: number;
  /** Renames and moves carried out as moves (not counted as deletions). */
  movesOnPath1: number;
  movesOnPath2: number;
  conflicts: number;
  bytesToPath1: number;
  bytesToPath2: number;
}

export const emptyCounts = (): PlanCounts => ({
  copiesToPath1: 0,
  copiesToPath2: 0,
  deletesOnPath1: 0,
  deletesOnPath2: 0,
  movesOnPath1: 0,
  movesOnPath2: 0,
  conflicts: 0,
  bytesToPath1: 0,
  bytesToPath2: 0,
});

/** rclone's running totals for one transfer process (from its JSON stats lines). */
export interface TransferProgress {
  readonly bytes: number;
  readonly totalBytes: number;
  readonly transfers: number;
  readonly totalTransfers: number;
  readonly errors: number;
  readonly checks: number;
  readonly deletes: number;
  readonly renames: number;
}

export const RUN_PHASES = ['locking', 'listing', 'checking', 'propagating', 'committing', 'done'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

/** What a running run reports as it goes: to /status, the progress file and a terminal. */
export interface RunProgress {
  readonly phase: RunPhase;
  readonly listed: Record<Side, number>;
  readonly counts?: PlanCounts;
  readonly transfers?: Partial<Record<Direction, TransferProgress>>;
}

/**
 * Who keeps the original name when both sides changed a file (SYNC_CONFLICT_RESOLVE). Every
 * choice keeps both versions on both sides; `none` gives each a conflict name and leaves the
 * original name empty.
 */
export const CONFLICT_RESOLVES = ['newer', 'older', 'larger', 'smaller', 'path1', 'path2', 'none'] as const;
export type ConflictResolve = (typeof CONFLICT_RESOLVES)[number];

/** What makes a file changed (SYNC_COMPARE); `size,modtime,checksum` is accepted as `checksum`. */
export const COMPARE_MODES = ['size,modtime', 'checksum'] as const;
export type CompareMode = (typeof COMPARE_MODES)[number];

/**
 * How a plain local side's whole listing is made (SYNC_LOCAL_LISTING): `here`, in rclonesync, in
 * lsjson's bytes, wherever that is exactly what lsjson would print, else by rclone; `rclone`, always
 * by `rclone lsjson`.
 */
export const LOCAL_LISTINGS = ['here', 'rclone'] as const;
export type LocalListingMode = (typeof LOCAL_LISTINGS)[number];
