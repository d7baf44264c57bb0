/**
 * Making things happen to a pair while a run of it is under way, the way people and machines do
 * (an edit while files are copied, a kill right after the journal is written, a mount that goes
 * away), and judging afterwards what survived.
 *
 * Nothing here sleeps for a guessed time: each wait polls for a state the test can observe (the
 * run's journal written, a file holding given bytes) under a generous deadline, and gives up as
 * soon as the run it waits on has ended.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { pairId, pairPaths } from '../../src/state/pair.ts';
import type { Side } from '../../src/model.ts';
import { conflictCopyPattern } from './conflicts.ts';
import { type CliResult, dump, type Env, type RunningCli, sleep } from './processes.ts';

const POLL_MS = 10;
/** A shared, noisy machine: a run's next step can take long to come. */
const DEADLINE_MS = 90_000;

/** Polls `probe` until it returns something other than undefined or false. */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; context?: () => string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? DEADLINE_MS);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${options.context ? `\n${options.context()}` : ''}`);
    await sleep(POLL_MS);
  }
}

/** Like `waitUntil`, but fails at once (with the run's output) if `running` ends first: the moment will never come. */
export async function waitDuringRun<T>(running: RunningCli, what: string, probe: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  let ended: CliResult | undefined;
  void running.result.then((result) => (ended = result));
  return waitUntil(what, async () => {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (ended) throw new Error(`the run ended before ${what}\n${dump(ended)}`);
    return undefined;
  });
}

/** The journal file of the pair a run with this environment syncs (SYNC_STATE_DIR, SYNC_PATH1, SYNC_PATH2). */
export function journalFileOf(env: Env): string {
  const { SYNC_STATE_DIR: stateDir, SYNC_PATH1: path1, SYNC_PATH2: path2 } = env;
  if (!stateDir || !path1 || !path2) throw new Error('journalFileOf: the environment names no pair (SYNC_STATE_DIR, SYNC_PATH1, SYNC_PATH2)');
  return pairPaths(stateDir, pairId(path1.trim(), path2.trim())).journal;
}

export async function readIfPresent(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Waits until `running` has written its journal — it is then about to copy — and returns the
 * journal's bytes. `previous` is the journal an earlier (killed) run left: the run's own journal is
 * the first content that differs from it (the journal is replaced atomically, never torn).
 */
export async function journalWritten(running: RunningCli, env: Env, previous?: Buffer): Promise<Buffer> {
  const file = journalFileOf(env);
  return waitDuringRun(running, `the run's journal (${file})`, async () => {
    const bytes = await readIfPresent(file);
    return bytes !== undefined && !(previous && bytes.equals(previous)) ? bytes : undefined;
  });
}

/** Waits until `file` holds exactly `content`, with the modification time `mtimeMs` (within a second) when given. */
export async function fileHolds(running: RunningCli, file: string, content: string | Buffer, mtimeMs?: number): Promise<void> {
  const wanted = Buffer.from(content);
  await waitDuringRun(running, `${file} to hold the copied version`, async () => {
    const bytes = await readIfPresent(file);
    if (!bytes?.equals(wanted)) return false;
    return mtimeMs === undefined || Math.abs((await stat(file)).mtimeMs - mtimeMs) < 1000;
  });
}

/**
 * Runs `run` until it exits 0, at most `maxRuns` times (a run may rightly exit 1 after a change it
 * saw during the previous run, and the next one settles it), and returns every result. Expects the
 * last to have exited 0.
 */
export async function runUntilSuccess(run: () => Promise<CliResult>, maxRuns: number): Promise<CliResult[]> {
  const results: CliResult[] = [];
  do results.push(await run());
  while (results.at(-1)!.exitCode !== 0 && results.length < maxRuns);
  expect(results.at(-1)!.exitCode, results.map(dump).join('\n======\n')).toBe(0);
  return results;
}

/** The paths a version of `path` may be kept under: the name itself, or either side's conflict copy of it. */
export function isVersionOf(path: string, candidate: string): boolean {
  return candidate === path || (['path1', 'path2'] as const satisfies readonly Side[]).some((side) => conflictCopyPattern(path, side).test(candidate));
}

/**
 * Every one of `versions` is in `tree` (path -> content) as `path` or as a conflict copy of it, and
 * nothing else stands in for `path`. Says which version is missing, and what there is instead.
 */
export function expectVersionsKept(tree: Record<string, string>, path: string, versions: readonly string[], where: string): void {
  const kept = Object.entries(tree).filter(([candidate]) => isVersionOf(path, candidate));
  const detail = `${where}: versions of ${path} found: ${JSON.stringify(Object.fromEntries(kept))}`;
  for (const version of versions) expect(kept.some(([, content]) => content === version), `${detail}; missing ${JSON.stringify(version)}`).toBe(true);
  expect(kept.every(([, content]) => versions.includes(content)), detail).toBe(true);
}

/** The file a side keeps at `path`, joined onto the side's folder: for stat and read. */
export const fileAt = (root: string, path: string): string => join(root, ...path.split('/'));
