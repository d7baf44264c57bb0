/**
 * The observe step's I/O: the filters file (its hash must match the snapshot's), a side's listing
 * (streamed from rclone in batches, so a 1M-file tree is never one buffer), and a local root's
 * identity (a mount that goes away during a run changes it).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { FileMeta, Listing, Side } from '../model.ts';
import { parseRclonePath } from '../rclone/paths.ts';
import type { BlockComparison } from '../rclone/listing-blocks.ts';
import { RcloneError, type Rclone } from '../rclone/rclone.ts';

const NEWLINE = /[\n\r]/;

export interface Filters {
  readonly file: string | undefined;
  /** sha256 of the file's text, '' without one. */
  readonly hash: string;
}

export async function readFilters(file: string | undefined): Promise<Filters> {
  if (!file) return { file: undefined, hash: '' };
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`SYNC_FILTERS_FILE (--filters-file): cannot read "${file}" (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return { file, hash: createHash('sha256').update(text).digest('hex') };
}

export interface ListSideOptions {
  readonly rclone: Rclone;
  readonly logger: Logger;
  readonly side: Side;
  readonly root: string;
  readonly filtersFile: string | undefined;
  readonly hashType: string;
  /** Left out of the listing: the trash, wherever it is. */
  readonly excludes: readonly string[];
  /** Every folder the side holds (empty ones included) is added here. */
  readonly folders: Set<string>;
  /** Called with the running count of files listed, after each batch. */
  readonly onListed: (count: number) => void;
  /**
   * This side's files in the last snapshot, once it is read (the two are read at the same time).
   * A file listed exactly as the snapshot has it is held as the snapshot's own object: on a run
   * where little changed, the listing then costs a map entry a file and no metadata of its own;
   * and when every file is listed exactly so, the snapshot's map itself is returned as the listing
   * (detection compares nothing then, and the listing's map is let go).
   */
  readonly snapshotted?: () => Listing | undefined;
  /** The listing's blocks against the last run's: while they match, lines are not even read. */
  readonly blocks?: BlockComparison;
}

/**
 * One side's files; `missing` when its root does not exist (the gate decides what that means);
 * `unchanged` when its blocks are exactly the last run's (the listing is then left empty: it is
 * the snapshot's, unread).
 */
export async function listSide(options: ListSideOptions): Promise<{ listing: Listing; missing: boolean; unchanged: boolean }> {
  const { rclone, logger, side, root, filtersFile, hashType, folders } = options;
  const listing: Listing = new Map();
  let shared: Listing | undefined;
  /** Files listed as the snapshot holds them, each counted once; and whether a path came twice. */
  let asSnapshotted = 0;
  let repeated = false;
  const share = (path: string, meta: FileMeta): FileMeta => {
    const before = shared!.get(path);
    return before !== undefined && before.size === meta.size && before.mtime === meta.mtime && before.hash === meta.hash ? before : meta;
  };
  try {
    const { blocks } = options;
    const entries = rclone.list(root, {
      ...(filtersFile ? { filtersFile } : {}),
      ...(hashType ? { hashType } : {}),
      ...(blocks ? { blocks } : {}),
      excludes: [...options.excludes],
      onFolder: (path) => folders.add(path),
    });
    for await (const batch of entries) {
      if (!shared && (shared = options.snapshotted?.())) {
        // What was listed before the snapshot was read.
        for (const [path, meta] of listing) {
          const kept = share(path, meta);
          if (kept === meta) continue;
          listing.set(path, kept);
          asSnapshotted++;
        }
      }
      for (const entry of batch) {
        if (NEWLINE.test(entry.path)) {
          // rclone's file lists are line-based: such a name cannot be passed to it safely.
          logger.warn({ side, path: JSON.stringify(entry.path) }, 'skipping a file whose name contains a line break');
          continue;
        }
        const kept = shared ? share(entry.path, entry.meta) : entry.meta;
        const count = listing.size;
        listing.set(entry.path, kept);
        if (listing.size === count) repeated = true;
        else if (kept !== entry.meta) asSnapshotted++;
      }
      options.onListed(blocks?.skipping ? blocks.filesMatched : listing.size);
    }
    // The last block of a skimmed listing is counted only once the listing has ended.
    if (blocks?.skipping) options.onListed(blocks.filesMatched);
  } catch (error) {
    if (error instanceof RcloneError && error.directoryNotFound) return { listing, missing: true, unchanged: false };
    throw error;
  }
  // Every path listed once, each exactly as the snapshot has it, and as many as it has: the same files.
  const same = shared !== undefined && !repeated && asSnapshotted === listing.size && listing.size === shared.size;
  return { listing: same ? shared! : listing, missing: false, unchanged: options.blocks?.skipping === true };
}

/** A local root's device and inode (undefined for remotes, and for a root that does not exist). */
export async function rootIdentity(root: string): Promise<string | undefined> {
  if (parseRclonePath(root).kind !== 'local') return undefined;
  try {
    const info = await stat(root);
    return `${info.dev}:${info.ino}`;
  } catch {
    return undefined;
  }
}
