/**
 * Run records as the history holds them, for tests of what reads the history (health, /status,
 * pings, the page): one builder, so a change to RunRecord's shape is made here once.
 */
import { EXIT_CODE_OF, type Outcome } from '../../src/errors.ts';
import type { RunRecord } from '../../src/state/history.ts';

export interface RecordTimes {
  /** When the run ended (default: now). */
  readonly endedAt?: Date | string | number;
  readonly durationMs?: number;
  readonly runId?: string;
  readonly pair?: string;
}

let sequence = 0;

export function runRecord(outcome: Outcome, times: RecordTimes = {}, extra: Partial<RunRecord> = {}): RunRecord {
  const end = new Date(times.endedAt ?? Date.now()).getTime();
  const durationMs = times.durationMs ?? 5_000;
  return {
    runId: times.runId ?? `run-${++sequence}`,
    pair: times.pair ?? 'p',
    startedAt: new Date(end - durationMs).toISOString(),
    endedAt: new Date(end).toISOString(),
    durationMs,
    outcome,
    exitCode: EXIT_CODE_OF[outcome],
    dryRun: false,
    resync: false,
    ...extra,
  } as RunRecord;
}
