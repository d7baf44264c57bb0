/**
 * What each side's trash holds, as the last run that looked saw it: written by the engine after
 * its retention check, read by `/status` and `/metrics` (which never list a remote themselves).
 */
import { readFile } from 'node:fs/promises';
import type { Side } from '../model.ts';
import { writeTextAtomic } from './atomic.ts';

export interface SideTrash {
  readonly files: number;
  readonly bytes: number;
  /** The oldest run folder's stamp, or null when the trash holds none. */
  readonly oldestStamp: string | null;
}

export interface TrashStats extends Record<Side, SideTrash> {
  readonly checkedAt: string;
}

export async function writeTrashStats(file: string, stats: TrashStats): Promise<void> {
  await writeTextAtomic(file, `${JSON.stringify(stats)}\n`);
}

/** undefined before any run looked at the trash (or when the file is unreadable). */
export async function readTrashStats(file: string): Promise<TrashStats | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as TrashStats;
  } catch {
    return undefined;
  }
}
