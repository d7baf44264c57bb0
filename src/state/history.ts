/**
 * The run history of a pair: the last 100 runs, newest last, one JSON line each. `status`,
 * `health`, the HTTP endpoints and the metrics all read it, so a separate process (a Docker
 * HEALTHCHECK, a CronJob's next pod) sees the same truth as the daemon.
 */
import { readFile } from 'node:fs/promises';
import type { Outcome, SafetyGate } from '../errors.ts';
import type { PlanCounts } from '../model.ts';
import { writeTextAtomic } from './atomic.ts';

export const HISTORY_LIMIT = 100;

export interface RunRecord {
  readonly runId: string;
  readonly pair: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly outcome: Outcome;
  readonly exitCode: number;
  readonly dryRun: boolean;
  readonly resync: boolean;
  /** What the plan held (and, on success, what was done). Absent when the run stopped before planning. */
  readonly counts?: PlanCounts;
  /** Files moved to each side's trash by what was done (absent with the trash off or nothing done). */
  readonly trashed?: { readonly path1: number; readonly path2: number };
  readonly message?: string;
  readonly gate?: SafetyGate;
}

export async function readHistory(file: string): Promise<RunRecord[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const records: RunRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line) as RunRecord);
    } catch {
      // A damaged line loses one record, not the history.
    }
  }
  return records;
}

/** Only the lock holder appends, so read-modify-write is safe. */
export async function appendHistory(file: string, record: RunRecord): Promise<void> {
  const records = [...(await readHistory(file)), record].slice(-HISTORY_LIMIT);
  await writeTextAtomic(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

export function lastSuccess(records: readonly RunRecord[]): RunRecord | undefined {
  for (let i = records.length - 1; i >= 0; i--) if (records[i]!.outcome === 'success') return records[i];
  return undefined;
}
