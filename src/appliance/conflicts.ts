/**
 * The conflict copies a pair holds now, for the status page: the files a person should look at
 * (`report.conflict-path2-20261125T143200Z.docx`). Taken from the committed snapshot rather than
 * from the run history, so a copy someone dealt with (deleted or renamed) drops off after the next
 * run, and one from weeks ago still shows. The snapshot is read again only when it changed (once a
 * run), never on each poll of /status.
 */
import { stat } from 'node:fs/promises';
import { readSnapshot } from '../state/snapshot.ts';

export interface ConflictCopies {
  readonly total: number;
  /** The newest first, at most NEWEST_SHOWN. */
  readonly newest: readonly { readonly path: string; readonly stamp: string }[];
}

const NEWEST_SHOWN = 10;
/** conflictName's shape (sync/reconcile.ts): `<stem>.conflict-<side>-<stamp>[-<n>][<.ext>]`. */
const CONFLICT_COPY = /\.conflict-path[12]-(\d{8}T\d{6}Z)(?:-\d+)?(?:\.[^./]*)?$/;

const cache = new Map<string, { readonly key: string; readonly copies: ConflictCopies }>();

/** undefined when there is no snapshot yet. */
export async function conflictCopies(snapshotFile: string): Promise<ConflictCopies | undefined> {
  const info = await stat(snapshotFile).catch(() => undefined);
  if (!info) return undefined;
  const key = `${info.mtimeMs}:${info.size}:${info.ino}`;
  const cached = cache.get(snapshotFile);
  if (cached?.key === key) return cached.copies;
  const snapshot = await readSnapshot(snapshotFile, { only: (path) => CONFLICT_COPY.test(path) }).catch(() => undefined);
  if (!snapshot) return undefined;
  const found = new Map<string, string>();
  for (const listing of [snapshot.path1, snapshot.path2]) {
    for (const path of listing.keys()) {
      const stamp = CONFLICT_COPY.exec(path)?.[1];
      if (stamp) found.set(path, stamp);
    }
  }
  const sorted = [...found].sort(([a, x], [b, y]) => y.localeCompare(x) || a.localeCompare(b));
  const copies: ConflictCopies = { total: sorted.length, newest: sorted.slice(0, NEWEST_SHOWN).map(([path, stamp]) => ({ path, stamp })) };
  cache.set(snapshotFile, { key, copies });
  return copies;
}
