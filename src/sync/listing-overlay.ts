/**
 * A listing read in part (rclone/listing-blocks.ts): the snapshot's entries stand for the folders
 * whose lines are exactly the last run's, and the lines read give the rest. The listing is then a
 * copy of the snapshot's map (a copy costs ~0.6 µs an entry and shares every key and record; the
 * lines of a million files cost several times that to read) with the entries under the changed
 * folders swapped for the files listed there. Detection compares just those two small maps.
 */
import type { FileMeta, Listing } from '../model.ts';

/** What detection compares in a listing read in part: the only place it can differ from the snapshot. */
export interface ChangedPart {
  /** The snapshot's entries under the changed folders. */
  readonly before: ReadonlyMap<string, FileMeta>;
  /** The files listed under them. */
  readonly now: ReadonlyMap<string, FileMeta>;
}

/** The folder of a path as listing blocks name it: '' for the root, else ending in "/". */
export const folderOf = (path: string): string => path.slice(0, path.lastIndexOf('/') + 1);

/**
 * The snapshot's files (`base`, left as it is) with those under `changedFolders` taken from
 * `listed` (every file listed there, and only those) instead.
 */
export function overlayListing(base: Listing, changedFolders: ReadonlySet<string>, listed: ReadonlyMap<string, FileMeta>): { listing: Listing; changed: ChangedPart } {
  const before = new Map<string, FileMeta>();
  if (changedFolders.size > 0) for (const [path, meta] of base) if (changedFolders.has(folderOf(path))) before.set(path, meta);
  const listing = new Map(base);
  for (const path of before.keys()) listing.delete(path);
  for (const [path, meta] of listed) listing.set(path, meta);
  return { listing, changed: { before, now: listed } };
}
