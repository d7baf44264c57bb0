/**
 * The running run's progress in a file of the pair's state folder, so that `status` in another
 * process (`docker compose exec … status`) can show the phase and the transfers, as the daemon's
 * /status does from memory. Written by the lock holder only (the engine reports a phase other than
 * `locking` only once it holds the lock), at most once a second, and removed when the run ends.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { RunProgress } from '../model.ts';
import type { PairPaths } from './pair.ts';

export interface ProgressRecord {
  readonly updatedAt: string;
  readonly progress: RunProgress;
}

const MIN_INTERVAL_MS = 1_000;

/** A sink for the engine's onProgress: keeps the file up to date; `end()` removes it. */
export function progressWriter(paths: PairPaths): { update(progress: RunProgress): void; end(): Promise<void> } {
  let written = false;
  let lastWrite = 0;
  let lastPhase: string | undefined;
  let pending: Promise<void> = Promise.resolve();
  return {
    update(progress) {
      if (progress.phase === 'locking') return;
      const now = Date.now();
      if (progress.phase === lastPhase && now - lastWrite < MIN_INTERVAL_MS) return;
      lastPhase = progress.phase;
      lastWrite = now;
      written = true;
      const record: ProgressRecord = { updatedAt: new Date(now).toISOString(), progress };
      // Writes follow each other; a failure only costs `status` its detail.
      pending = pending.then(async () => {
        const temporary = `${paths.progress}.tmp-${process.pid}`;
        await writeFile(temporary, JSON.stringify(record));
        await rename(temporary, paths.progress);
      }).catch(() => {});
    },
    async end() {
      await pending;
      if (written) await rm(paths.progress, { force: true }).catch(() => {});
    },
  };
}

export async function readProgress(paths: PairPaths): Promise<ProgressRecord | undefined> {
  try {
    return JSON.parse(await readFile(paths.progress, 'utf8')) as ProgressRecord;
  } catch {
    return undefined;
  }
}
