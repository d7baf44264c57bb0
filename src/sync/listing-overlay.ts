/**
 * A listing read in part (rclone/listing-blocks.ts): the snapshot's entries stand for the folders
 * whose lines are exactly the last run's, and the lines read give the rest. The listing is the
 * snapshot's own map, edited in place: the entries under the changed folders are swapped for the
 * files listed there (a copy of a million entries cost ~0.9 s a side in a profile, and a map's
 * memory). Detection compares just those two small maps; what else needs the snapshot as it was
 * (the gates' counts, the commit's entries for actions not done) reads it through `SnapshotAsItWas`.
 */
import type { FileMeta, Listing } from '../model.ts';

/** What detection compares in a listing read in part: the only place it can differ from the snapshot. */
export interface ChangedPart {
  /** The snapshot's entries under the changed folders. */
  readonly before: ReadonlyMap<string, FileMeta>;
  /** The files listed under them. */
  readonly now: ReadonlyMap<string, FileMeta>;
  /** The snapshot's files as they were before it became the listing. */
  readonly snapshot: ReadonlyMap<string, FileMeta>;
}

/** The folder of a path as listing blocks name it: '' for the root, else ending in "/". */
export const folderOf = (path: string): string => path.slice(0, path.lastIndexOf('/') + 1);

/**
 * Turns the snapshot's map of a side (`snapshot`) into the listing, in place: the files under
 * `changedFolders` become those `listed` there (every file listed there, and only those).
 */
export function overlayListing(snapshot: Listing, changedFolders: ReadonlySet<string>, listed: ReadonlyMap<string, FileMeta>): { listing: Listing; changed: ChangedPart } {
  const before = new Map<string, FileMeta>();
  if (changedFolders.size > 0) for (const [path, meta] of snapshot) if (changedFolders.has(folderOf(path))) before.set(path, meta);
  const size = snapshot.size;
  for (const path of before.keys()) snapshot.delete(path);
  for (const [path, meta] of listed) snapshot.set(path, meta);
  return { listing: snapshot, changed: { before, now: listed, snapshot: new SnapshotAsItWas(snapshot, changedFolders, before, size) } };
}

/**
 * The snapshot as it was, seen through the listing it became: under a changed folder its own
 * entries (kept aside), elsewhere the listing's, which are the snapshot's. True only until the
 * listing is edited again — the commit makes the new snapshot in it, and reads this first.
 */
class SnapshotAsItWas implements ReadonlyMap<string, FileMeta> {
  private readonly listing: ReadonlyMap<string, FileMeta>;
  private readonly changedFolders: ReadonlySet<string>;
  private readonly before: ReadonlyMap<string, FileMeta>;
  readonly size: number;

  constructor(listing: ReadonlyMap<string, FileMeta>, changedFolders: ReadonlySet<string>, before: ReadonlyMap<string, FileMeta>, size: number) {
    this.listing = listing;
    this.changedFolders = changedFolders;
    this.before = before;
    this.size = size;
  }

  get(path: string): FileMeta | undefined {
    return this.changedFolders.has(folderOf(path)) ? this.before.get(path) : this.listing.get(path);
  }

  has(path: string): boolean {
    return this.get(path) !== undefined;
  }

  *entries(): MapIterator<[string, FileMeta]> {
    for (const entry of this.listing) if (!this.changedFolders.has(folderOf(entry[0]))) yield entry;
    yield* this.before;
  }

  *keys(): MapIterator<string> {
    for (const [path] of this.entries()) yield path;
  }

  *values(): MapIterator<FileMeta> {
    for (const [, meta] of this.entries()) yield meta;
  }

  forEach(callback: (meta: FileMeta, path: string, map: ReadonlyMap<string, FileMeta>) => void): void {
    for (const [path, meta] of this.entries()) callback(meta, path, this);
  }

  [Symbol.iterator](): MapIterator<[string, FileMeta]> {
    return this.entries();
  }
}
