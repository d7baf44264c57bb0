/**
 * Reading what the CLI logs: its stdout is pino's JSON, one object a line (level as a label, since
 * the CLI and the container log the same way). The helpers pick out the lines a test asserts on:
 * the actions carried out (or planned, in a dry run), the run's summary and the line that explains
 * a failure.
 */
import { expect } from 'vitest';
import { dump, type CliResult } from './processes.ts';

/** One JSON log line as pino prints it (level is a label: 'info', 'warn', ...). */
export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly time?: string;
  readonly [key: string]: unknown;
}

/** Every line of `text` that is a JSON object; anything else (rclone's own noise, a stack) is left out. */
export function parseLogLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const value = JSON.parse(line) as unknown;
      if (value && typeof value === 'object' && !Array.isArray(value)) lines.push(value as LogLine);
    } catch {
      // not a log line
    }
  }
  return lines;
}

export interface ActionLine extends LogLine {
  readonly action: 'copy' | 'delete' | 'conflict' | 'file-folder-clash';
  readonly path: string;
}

export const actionsOf = (logs: readonly LogLine[]): ActionLine[] => logs.filter((l): l is ActionLine => typeof l.action === 'string');
export const copiesOf = (logs: readonly LogLine[]) => actionsOf(logs).filter((l) => l.action === 'copy');
export const deletesOf = (logs: readonly LogLine[]) => actionsOf(logs).filter((l) => l.action === 'delete');
export const conflictsOf = (logs: readonly LogLine[]) => actionsOf(logs).filter((l) => l.action === 'conflict');

export interface SummaryLine extends LogLine {
  readonly summary: true;
  readonly outcome: string;
  readonly exitCode: number;
  readonly dryRun: boolean;
  readonly resync: boolean;
  readonly copiesToPath1: number;
  readonly copiesToPath2: number;
  readonly deletesOnPath1: number;
  readonly deletesOnPath2: number;
  readonly conflicts: number;
}

export function summaryOf(logs: readonly LogLine[]): SummaryLine | undefined {
  return logs.find((l): l is SummaryLine => l.summary === true);
}

/** The line that explains a failed run (it carries `outcome`, and `gate` for a safety stop). */
export function failureOf(logs: readonly LogLine[]): (LogLine & { outcome: string; gate?: string }) | undefined {
  return logs.find((l) => typeof l.outcome === 'string' && l.summary !== true) as (LogLine & { outcome: string; gate?: string }) | undefined;
}

/** Exit 3 from the named safety gate, its message matching `message`, and the summary saying so. */
export function expectSafetyStop(result: CliResult, gate: string, message?: RegExp): void {
  expect(result.exitCode, dump(result)).toBe(3);
  const failure = failureOf(result.logs);
  expect(failure, dump(result)).toMatchObject({ outcome: 'safety-stop', gate });
  if (message) expect(failure!.msg).toMatch(message);
  expect(summaryOf(result.logs)).toMatchObject({ outcome: 'safety-stop', exitCode: 3 });
}

/** The run stopped after listing: both listings were exactly the last run's (the no-change shortcut). */
export const tookShortcut = (result: { readonly logs: readonly LogLine[] }): boolean => result.logs.some((l) => l.unchanged === true);

/** The sides whose listing was read in part: only the folders that changed (observe.ts). */
export const readInPart = (result: { readonly logs: readonly LogLine[] }): string[] =>
  result.logs.filter((l) => typeof l.changedFolders === 'number').map((l) => String(l.side)).sort();
