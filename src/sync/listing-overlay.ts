/**
 * A listing as the snapshot's own map, edited in place, so that a run does not build a second map
 * of every file a side (a copy of a million entries cost ~0.9 s a side in a profile, and a map's
 * memory). Two ways in:
 * - read in part (rclone/listing-blocks.ts): the snapshot's entries stand for the folders whose
 *   lines are exactly the last run's, and the lines read give the rest (overlayListing);
 * - read whole (WholeListing): each file listed is looked up in the snapshot as it comes, and only
 *   what differs is kept aside.
 * Either way detection compares just the two small maps of the part that can differ; what else
 * needs the snapshot as it was (the gates' counts, the commit's entries for actions not done)
 * reads it through `SnapshotAsItWas`.
 */
import { folderOf, inFolder, sameRecord, type FileMeta, type Listing } from '../model.ts';

/** What detection compares in a listing made of the snapshot: the only place it can differ from it. */
export interface ChangedPart {
  /** The snapshot's entries there (read in part: under the changed folders; read whole: of the files changed or gone). */
  readonly before: ReadonlyMap<string, FileMeta>;
  /** The files listed there (read in part: under the changed folders; read whole: the files changed or new). */
  readonly now: ReadonlyMap<string, FileMeta>;
  /** The snapshot's files as they were before it became the listing. */
  readonly snapshot: ReadonlyMap<string, FileMeta>;
}

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
  const inChangedPart = (path: string) => changedFolders.has(folderOf(path));
  return { listing: snapshot, changed: { before, now: listed, snapshot: new SnapshotAsItWas(snapshot, inChangedPart, before, size) } };
}

/** One folder, as a whole listing names the snapshot's files there. */
interface FolderListed {
  readonly name: string;
  /** Lines that named one of them (a path listed twice counts twice). */
  listed: number;
  /** The last of those paths. */
  last: string;
  /** Each sorted after the one before (lsjson prints a folder's entries in name order): so none came twice. */
  increasing: boolean;
  /** Those paths: which of the snapshot's files there were listed, should some not be. */
  readonly paths: string[];
}

/**
 * A listing read whole, held against the snapshot's map (of its side) file by file as it comes;
 * `finish` makes that map the listing. A file listed as the snapshot has it costs one lookup, and
 * its path a place in its folder's list: no map of the listing's own, and detection compares only
 * what is kept aside (`now`: files new or changed, as listed; `before`: the snapshot's entries of
 * the files changed or gone). At 100k files a side, the listing's own map and detection's two
 * passes over it and the snapshot were ~0.15 s of node's CPU in a change batch.
 *
 * A file is gone when the snapshot holds it and no line names it. When fewer of the snapshot's
 * files were listed than it holds, `finish` counts its files per folder, and looks for the missing
 * ones in the folders listed short. (Counting them up front, to let each folder's paths go once it
 * was complete, cost 80–144 ms at 1M and saved no memory that showed: bench/PROFILE.md.)
 *
 * A path listed twice (a remote that allows two files of one name) makes the listing `repeated`
 * (never exact); its version that differs from the snapshot's, if any, is the one kept.
 */
export class WholeListing {
  private readonly snapshot: Listing;
  private readonly now = new Map<string, FileMeta>();
  private readonly before = new Map<string, FileMeta>();
  /** The folders in which some of the snapshot's files were listed. */
  private readonly folders = new Map<string, FolderListed>();
  /** The last folder looked up: lsjson prints a folder's entries together. */
  private last: FolderListed | undefined;
  private finished = false;
  /** A path was listed twice. */
  repeated = false;
  /** Files listed, repeats included (for progress). */
  count = 0;

  constructor(snapshot: Listing) {
    this.snapshot = snapshot;
  }

  add(path: string, meta: FileMeta): void {
    this.count++;
    const known = this.snapshot.get(path);
    if (known === undefined) {
      if (this.now.has(path)) this.repeated = true;
      this.now.set(path, meta);
      return;
    }
    const folder = this.folderOf(path);
    if (folder.increasing && folder.listed > 0 && !(path > folder.last)) folder.increasing = false;
    folder.listed++;
    folder.last = path;
    folder.paths.push(path);
    if (sameRecord(meta, known)) return;
    this.now.set(path, meta);
    this.before.set(path, known);
  }

  /** After the last file: the snapshot's map, now the listing, and where alone it differs from the snapshot as it was. */
  finish(): { listing: Listing; changed: ChangedPart | undefined; exact: boolean } {
    if (this.finished) throw new Error('internal error: a whole listing finished twice');
    this.finished = true;
    const { snapshot, now, before } = this;
    const size = snapshot.size;
    /** The snapshot's files listed, each once; and the paths listed in each folder where some came twice. */
    let listedOnce = 0;
    const distinct = new Map<string, Set<string>>();
    for (const [name, folder] of this.folders) {
      if (folder.increasing) {
        listedOnce += folder.listed;
        continue;
      }
      const paths = new Set(folder.paths);
      if (paths.size < folder.listed) this.repeated = true;
      distinct.set(name, paths);
      listedOnce += paths.size;
    }
    const gone = listedOnce < size ? this.goneFiles(distinct) : [];
    this.folders.clear();
    if (now.size === 0 && before.size === 0) return { listing: snapshot, changed: undefined, exact: !this.repeated };
    for (const path of gone) snapshot.delete(path);
    for (const [path, meta] of now) snapshot.set(path, meta);
    const inChangedPart = (path: string) => before.has(path) || now.has(path);
    return { listing: snapshot, changed: { before, now, snapshot: new SnapshotAsItWas(snapshot, inChangedPart, before, size) }, exact: false };
  }

  /** The snapshot's files no line named (kept aside in `before`): looked for in the folders listed short. */
  private goneFiles(distinct: ReadonlyMap<string, Set<string>>): string[] {
    const held = new Map<string, number>();
    forEachFolder(this.snapshot, (folder, count) => held.set(folder, (held.get(folder) ?? 0) + count));
    /** The folders listed short, with the paths listed there. */
    const short = new Map<string, ReadonlySet<string>>();
    for (const [name, count] of held) {
      const folder = this.folders.get(name);
      // A folder without repeats listed each path once; one never listed, none.
      const listedThere = distinct.get(name)?.size ?? folder?.listed ?? 0;
      if (listedThere < count) short.set(name, distinct.get(name) ?? new Set(folder?.paths));
    }
    const gone: string[] = [];
    let folder: string | undefined;
    let listed: ReadonlySet<string> | undefined;
    for (const [path, meta] of this.snapshot) {
      if (folder === undefined || !inFolder(path, folder)) listed = short.get((folder = folderOf(path)));
      if (listed && !listed.has(path)) {
        gone.push(path);
        this.before.set(path, meta);
      }
    }
    return gone;
  }

  /** The folder of a path the snapshot holds. */
  private folderOf(path: string): FolderListed {
    if (this.last && inFolder(path, this.last.name)) return this.last;
    const name = folderOf(path);
    let folder = this.folders.get(name);
    if (!folder) this.folders.set(name, (folder = { name, listed: 0, last: '', increasing: true, paths: [] }));
    return (this.last = folder);
  }
}

/** Calls back with each run of consecutive paths of one folder in `listing` (a folder may come in several). */
function forEachFolder(listing: ReadonlyMap<string, FileMeta>, callback: (folder: string, count: number) => void): void {
  let folder: string | undefined;
  let count = 0;
  for (const path of listing.keys()) {
    if (folder !== undefined && inFolder(path, folder)) {
      count++;
      continue;
    }
    if (folder !== undefined) callback(folder, count);
    folder = folderOf(path);
    count = 1;
  }
  if (folder !== undefined) callback(folder, count);
}

/**
 * The snapshot as it was, seen through the listing it became: in the changed part its own entries
 * (kept aside), elsewhere the listing's, which are the snapshot's. True only until the listing is
 * edited again — the commit makes the new snapshot in it, and reads this first.
 */
class SnapshotAsItWas implements ReadonlyMap<string, FileMeta> {
  private readonly listing: ReadonlyMap<string, FileMeta>;
  private readonly inChangedPart: (path: string) => boolean;
  private readonly before: ReadonlyMap<string, FileMeta>;
  readonly size: number;

  constructor(listing: ReadonlyMap<string, FileMeta>, inChangedPart: (path: string) => boolean, before: ReadonlyMap<string, FileMeta>, size: number) {
    this.listing = listing;
    this.inChangedPart = inChangedPart;
    this.before = before;
    this.size = size;
  }

  get(path: string): FileMeta | undefined {
    return this.inChangedPart(path) ? this.before.get(path) : this.listing.get(path);
  }

  has(path: string): boolean {
    return this.get(path) !== undefined;
  }

  *entries(): MapIterator<[string, FileMeta]> {
    for (const entry of this.listing) if (!this.inChangedPart(entry[0])) yield entry;
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
