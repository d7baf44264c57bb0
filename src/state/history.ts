/**
 * The run history of a pair: the last 100 runs, newest last, one JSON line each. `status`,
 * `health`, the HTTP endpoints and the metrics all read it, so a separate process (a Docker
 * HEALTHCHECK, a CronJob's next pod) sees the same truth as the daemon.
 */
import { readFile } from 'node:fs/promises';
import { EXIT_CODE_OF, type ExitCode, type FailureOutcome, type SafetyGate } from '../errors.ts';
import type { PlanCounts } from '../model.ts';
import { writeTextAtomic } from './atomic.ts';

export const HISTORY_LIMIT = 100;

/** What every run record says, however the run ended. */
export interface RunFacts {
  readonly runId: string;
  readonly pair: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly dryRun: boolean;
  readonly resync: boolean;
  /** What the plan held (and, on success, what was done). Absent when the run stopped before planning. */
  readonly counts?: PlanCounts;
  /** Files moved to each side's trash by what was done (absent with the trash off or nothing done). */
  readonly trashed?: { readonly path1: number; readonly path2: number };
}

/** How a run ended: a success; a safety stop names its gate; every other failure says why. */
export type RunEnding =
  | { readonly outcome: 'success'; readonly message?: never; readonly gate?: never }
  | { readonly outcome: 'safety-stop'; readonly message: string; readonly gate: SafetyGate }
  | { readonly outcome: Exclude<FailureOutcome, 'safety-stop'>; readonly message: string; readonly gate?: never };

/** One line of the history; `exitCode` is the outcome's (EXIT_CODE_OF), stored for readers of the file. */
export type RunRecord = RunFacts & RunEnding & { readonly exitCode: ExitCode };

export function runRecord(facts: RunFacts, ending: RunEnding): RunRecord {
  return { ...facts, ...ending, exitCode: EXIT_CODE_OF[ending.outcome] };
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
