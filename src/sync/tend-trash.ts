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

/**
 * Retention, at the end of every successful run: run folders whose stamp is older than
 * SYNC_TRASH_DAYS go (one folder listing per side). Then what each trash holds is written down
 * for /status and /metrics — counted again only when this run trashed or purged something, or
 * hourly: a run that changes nothing should cost little more than listing. A failure is a
 * warning, never a failed run.
 */
export async function tendTrash(options: TendTrashOptions, trashedSomething: boolean): Promise<void> {
  const { rclone, logger, statsFile, trashRoots, trashDays, now } = options;
  const previous = await readTrashStats(statsFile);
  const stale = !previous || Date.now() - Date.parse(previous.checkedAt) >= TRASH_COUNT_INTERVAL_MS;
  let changed = false;
  const sides = await Promise.all(
    SIDES.map(async (side): Promise<SideTrash | undefined> => {
      try {
        const names = await rclone.folderNames(trashRoots[side]);
        // Turning the trash off empties it.
        const expired = trashDays === 0 ? names.filter(isStamp) : expiredStamps(names, now, trashDays);
        if (expired.length > 0) {
          await rclone.purgeFolders(trashRoots[side], expired);
          logger.info({ side, folders: expired.length }, 'purged expired trash folders');
          changed = true;
        }
        const kept = names.filter((name) => isStamp(name) && !expired.includes(name)).sort();
        if (!(trashedSomething || changed || stale) && previous) return { ...previous[side], oldestStamp: kept[0] ?? null };
        return { ...(await rclone.size(trashRoots[side])), oldestStamp: kept[0] ?? null };
      } catch (error) {
        logger.warn({ side, err: (error as Error).message }, 'could not purge the trash; will try again after the next run');
        return previous?.[side];
      }
    }),
  );
  const [path1, path2] = sides;
  if (!path1 || !path2) return;
  const recounted = trashedSomething || changed || stale;
  const checkedAt = recounted || !previous ? new Date().toISOString() : previous.checkedAt;
  await writeTrashStats(statsFile, { path1, path2, checkedAt }).catch(() => {});
}
