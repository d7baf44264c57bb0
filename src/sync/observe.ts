/**
 * The observe step's I/O: the filters file (its hash must match the snapshot's), a side's listing
 * (streamed from rclone in batches, so a 1M-file tree is never one buffer), and a local root's
 * identity (a mount that goes away during a run changes it).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { sameRecord, type FileMeta, type Listing, type Side } from '../model.ts';
import { parseRclonePath } from '../rclone/paths.ts';
import type { BlockComparison } from '../rclone/listing-blocks.ts';
import { RcloneError, type Rclone } from '../rclone/rclone.ts';
import { overlayListing, WholeListing, type ChangedPart } from './listing-overlay.ts';

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
  /** Left out of the listing, with all they hold (relative to the root): the trash, wherever it is. */
  readonly excludedFolders: readonly string[];
  /** Every folder the side holds (empty ones included) is added here. */
  readonly folders: Set<string>;
  /** Called with the running count of files listed, after each batch. */
  readonly onListed: (count: number) => void;
  /**
   * This side's files in the last snapshot, once it is read (the two are read at the same time).
   * The listing becomes this map, edited: a file listed exactly as the snapshot has it costs a
   * lookup and nothing of its own, and when every file is listed exactly so, the map is the
   * listing as it is (detection compares nothing then). Consumed: the snapshot as it was is seen
   * through `changed.snapshot` afterwards.
   */
  readonly snapshotted?: () => Listing | undefined;
  /** The same, waited for (read in part, and after the last line of a whole listing). */
  readonly snapshot?: () => Promise<Listing | undefined>;
  /** The listing's blocks against the last run's: lines of blocks it had are not even read. */
  readonly blocks?: BlockComparison;
}

/** One side as listed (see listSide). */
export interface ListedSide {
  readonly listing: Listing;
  /** Its root does not exist (the gate decides what that means). */
  readonly missing: boolean;
  /** Its blocks, and the other side's, are exactly the last run's: the listing is left empty (it is the snapshot's, unread). */
  readonly unchanged: boolean;
  /** It holds exactly the snapshot's files, each as the snapshot has it. */
  readonly exact: boolean;
  /** When it is the snapshot's map, edited (and not exactly as it was): where alone it can differ from the snapshot. */
  readonly changed?: ChangedPart;
}

/**
 * One side's files, as the snapshot's map edited (listing-overlay.ts) when there is a snapshot.
 * When the last run's blocks say which folders changed, only those are read, and their files are
 * swapped in. Read whole, each file is held against the snapshot as it comes; the files listed
 * before the snapshot was read wait in a map of their own.
 */
export async function listSide(options: ListSideOptions): Promise<ListedSide> {
  const { rclone, logger, side, root, filtersFile, hashType, folders, blocks } = options;
  /** The files listed before the snapshot was at hand; or, read in part, those read. */
  const listing: Listing = new Map();
  let whole: WholeListing | undefined;
  const holdAgainst = (snapshot: Listing): WholeListing => {
    const held = new WholeListing(snapshot);
    for (const [path, meta] of listing) held.add(path, meta);
    held.repeated ||= repeated;
    listing.clear();
    return held;
  };
  let shared: Listing | undefined;
  /** Files listed as the snapshot holds them, each counted once; and whether a path came twice. */
  let asSnapshotted = 0;
  let repeated = false;
  const share = (path: string, meta: FileMeta): FileMeta => {
    const before = shared!.get(path);
    return sameRecord(meta, before) ? before! : meta;
  };
  const shareListed = () => {
    for (const [path, meta] of listing) {
      const kept = share(path, meta);
      if (kept === meta) continue;
      listing.set(path, kept);
      asSnapshotted++;
    }
  };
  /** Files found by a walk here (local-listing.ts), before any line of it is read. */
  let walked = 0;
  try {
    const entries = rclone.list(root, {
      ...(filtersFile ? { filtersFile } : {}),
      ...(hashType ? { hashType } : {}),
      ...(blocks ? { blocks } : {}),
      excludedFolders: options.excludedFolders,
      onFolder: (path) => folders.add(path),
      onWalked: (files) => options.onListed((walked = files)),
    });
    for await (const batch of entries) {
      // Lines come only once it is decided how the listing is read (read in part: the batches of its spans).
      if (!whole && batch.length > 0 && (!blocks || blocks.reading?.kind === 'whole')) {
        const snapshot = options.snapshotted?.();
        if (snapshot) whole = holdAgainst(snapshot);
      }
      // What was listed before the snapshot was read.
      if (!whole && !shared && (shared = options.snapshotted?.())) shareListed();
      for (const entry of batch) {
        if (NEWLINE.test(entry.path)) {
          // rclone's file lists are line-based: such a name cannot be passed to it safely.
          logger.warn({ side, path: JSON.stringify(entry.path) }, 'skipping a file whose name contains a line break');
          continue;
        }
        if (whole) {
          whole.add(entry.path, entry.meta);
          continue;
        }
        const kept = shared ? share(entry.path, entry.meta) : entry.meta;
        const count = listing.size;
        listing.set(entry.path, kept);
        if (listing.size === count) repeated = true;
        else if (kept !== entry.meta) asSnapshotted++;
      }
      // A side walked here was counted as it was walked; its lines are counted again as they are read.
      options.onListed(Math.max(walked, (blocks?.filesMatched ?? 0) + (whole?.count ?? listing.size)));
    }
  } catch (error) {
    if (error instanceof RcloneError && error.directoryNotFound) return { listing, missing: true, unchanged: false, exact: false };
    throw error;
  }
  const reading = blocks?.reading;
  if (reading?.kind === 'unchanged') return { listing, missing: false, unchanged: true, exact: true };
  if (reading?.kind === 'in-part') {
    const snapshot = await options.snapshot?.();
    // The last run's blocks were taken for the snapshot's entries: without them this listing is a fragment.
    if (!snapshot) throw new Error(`internal error: ${side}'s listing was read in part, but the snapshot it stands on is gone`);
    if (!shared) {
      shared = snapshot;
      shareListed();
    }
    const { listing: overlaid, changed } = overlayListing(snapshot, reading.changedFolders, listing);
    logger.info(
      { side, changedFolders: reading.changedFolders.size, filesRead: listing.size, filesStanding: overlaid.size - listing.size },
      'read only the folders that changed since the last run; the others are as the snapshot has them',
    );
    const exact = !repeated && asSnapshotted === listing.size && changed.before.size === listing.size;
    return { listing: overlaid, missing: false, unchanged: false, exact, changed };
  }
  // The snapshot, if there is one, came after the last line (or there was none).
  if (!whole) {
    const snapshot = await options.snapshot?.();
    if (snapshot) whole = holdAgainst(snapshot);
  }
  if (!whole) return { listing, missing: false, unchanged: false, exact: false };
  const { listing: held, changed, exact } = whole.finish();
  return { listing: held, missing: false, unchanged: false, exact, ...(changed ? { changed } : {}) };
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
