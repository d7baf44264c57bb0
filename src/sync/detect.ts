/**
 * Update detection: what changed on one side since the last successful run. Pure: the listing and
 * the snapshot come in, only the changed paths come out (unchanged files cost nothing further).
 */
import { changedOnSide } from './compare.ts';
import type { ChangeSet } from './types.ts';
import type { FileMeta, Listing } from '../model.ts';

export function detectChanges(snapshot: ReadonlyMap<string, FileMeta>, current: ReadonlyMap<string, FileMeta>, useHash: boolean, mtimeToleranceMs = 0): ChangeSet {
  const changes: ChangeSet = new Map();
  // The listing found every file as the snapshot holds it and handed back the snapshot (observe.ts).
  if (current === snapshot) return changes;
  for (const [path, now] of current) {
    const before = snapshot.get(path);
    // Listed as the snapshot holds it: the listing kept the snapshot's own object (observe.ts).
    if (before === now) continue;
    if (!before) changes.set(path, { kind: 'new', now });
    else if (changedOnSide(before, now, useHash, mtimeToleranceMs)) changes.set(path, { kind: 'modified', now, before });
  }
  for (const [path, before] of snapshot) {
    if (!current.has(path)) changes.set(path, { kind: 'deleted', before });
  }
  return changes;
}

/**
 * After a run died mid-propagation (see state/journal.ts), a destination file it was writing may be
 * half-written. Such a file is recognised — the journal names it, it is not the version the copy was
 * writing, and it was last written while the dead run was alive — and is treated as not changed
 * by the user, so the copy is simply made again instead of raising a conflict: a half-written new
 * file is as good as absent, a half-overwritten one as its old self. That holds even when the
 * source changed since (the copy is then made with the new version): the bytes there are still
 * nobody's. When the source of a half-written new file is gone altogether (renamed, deleted),
 * nothing will overwrite it: it is planned for removal, as a deletion on the source side.
 */
export function discountInterruptedCopies(
  changes: ChangeSet,
  current: Listing,
  sourceCurrent: Listing,
  journalCopies: ReadonlyMap<string, FileMeta>,
  keyOf: (path: string) => string,
  window: { readonly from: number; readonly to: number },
  sourceChanges?: ChangeSet,
): Map<string, FileMeta> {
  /** path -> the half-written version as listed (detection looks past it from now on). */
  const discounted = new Map<string, FileMeta>();
  for (const [path, change] of changes) {
    if (change.kind === 'deleted') continue;
    const source = journalCopies.get(keyOf(path));
    if (!source) continue;
    // The copy completed: this is the version it was writing, not junk.
    if (change.now.size === source.size && change.now.mtime === source.mtime) continue;
    const written = change.now.mtime;
    if (written < window.from || written > window.to) continue;
    discounted.set(path, change.now);
    changes.delete(path);
    if (change.kind !== 'new') continue;
    if (sourceCurrent.has(path) || !sourceChanges) current.delete(path);
    else if (!sourceChanges.has(path)) sourceChanges.set(path, { kind: 'deleted', before: source });
  }
  return discounted;
}
