/**
 * The trash's upkeep after each successful run: retention (run folders older than SYNC_TRASH_DAYS
 * go) and the counts /status and /metrics show. Kept apart from the pipeline: it never decides
 * what to sync, and its failures are warnings.
 */
import type { Logger } from '../log.ts';
import { SIDES, type Side } from '../model.ts';
import type { Rclone } from '../rclone/rclone.ts';
import { readTrashStats, writeTrashStats, type SideTrash } from '../state/trash-stats.ts';
import { expiredStamps, isStamp } from './trash.ts';

/** How often a run that trashed nothing counts what the trash holds (for /status and /metrics). */
const TRASH_COUNT_INTERVAL_MS = 3_600_000;

export interface TendTrashOptions {
  readonly rclone: Rclone;
  readonly logger: Logger;
  /** The pair's trash-stats file. */
  readonly statsFile: string;
  readonly trashRoots: Record<Side, string>;
  /** 0: the trash is off, and whatever it still holds goes. */
  readonly trashDays: number;
  /** The run's start, in milliseconds: the clock retention counts from. */
  readonly now: number;
}

/** What one run moved into a side's trash. */
export interface TrashedFiles {
  readonly files: number;
  readonly bytes: number;
}

/**
 * Retention, at the end of every successful run: run folders whose stamp is older than
 * SYNC_TRASH_DAYS go (one folder listing per side). Then what each trash holds is written down
 * for /status and /metrics: the last counts plus what this run trashed, counted again (a tree
 * size, one more rclone process on a remote) only when a side's folders were purged, when there
 * are no counts yet, and hourly, which also catches what a person took out of the trash. A run
 * that changes nothing costs little more than listing. A failure is a warning, never a failed run.
 */
export async function tendTrash(options: TendTrashOptions, trashed: Record<Side, TrashedFiles> | undefined): Promise<void> {
  const { rclone, logger, statsFile, trashRoots, trashDays, now } = options;
  const previous = await readTrashStats(statsFile);
  const stale = !previous || Date.now() - Date.parse(previous.checkedAt) >= TRASH_COUNT_INTERVAL_MS;
  const sides = await Promise.all(
    SIDES.map(async (side): Promise<SideTrash | undefined> => {
      try {
        const names = await rclone.folderNames(trashRoots[side]);
        // Turning the trash off empties it.
        const expired = trashDays === 0 ? names.filter(isStamp) : expiredStamps(names, now, trashDays);
        if (expired.length > 0) {
          await rclone.purgeFolders(trashRoots[side], expired);
          logger.info({ side, folders: expired.length }, 'purged expired trash folders');
        }
        const oldestStamp = names.filter((name) => isStamp(name) && !expired.includes(name)).sort()[0] ?? null;
        if (stale || expired.length > 0) return { ...(await rclone.size(trashRoots[side])), oldestStamp };
        const added = trashed?.[side] ?? { files: 0, bytes: 0 };
        return { files: previous[side].files + added.files, bytes: previous[side].bytes + added.bytes, oldestStamp };
      } catch (error) {
        logger.warn({ side, err: (error as Error).message }, 'could not purge the trash; will try again after the next run');
        return previous?.[side];
      }
    }),
  );
  const [path1, path2] = sides;
  if (!path1 || !path2) return;
  const checkedAt = stale ? new Date().toISOString() : previous.checkedAt;
  await writeTrashStats(statsFile, { path1, path2, checkedAt }).catch(() => {});
}
