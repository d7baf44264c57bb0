/**
 * `rclonesync status`: per pair of the state folder, its health, the run going on now (from the
 * lock and the progress file the running process keeps), the last runs and the next scheduled
 * time, with every time in the local time zone (TZ), as the logs show them. A separate process
 * from the daemon: everything comes from the state folder.
 */
import { open } from 'node:fs/promises';
import { Cron } from 'croner';
import type { Config } from '../config.ts';
import { readHistory, type RunRecord } from '../state/history.ts';
import { lockHolder } from '../state/lock.ts';
import { ConfigError } from '../errors.ts';
import { pairDirsIn, pairId, pairPaths } from '../state/pair.ts';
import { readProgress } from '../state/progress.ts';
import type { RunProgress } from '../model.ts';
import { formatDuration, healthVerdict, maxAgeOf, scheduleTimezone, type HealthVerdict } from './health.ts';

export interface CurrentRunStatus {
  readonly since: string;
  readonly pid: number;
  readonly host: string;
  /** Absent when the running process has not reported yet (or is older than the progress file). */
  readonly progress?: RunProgress;
  readonly progressAt?: string;
}

export interface PairStatus {
  /** The pair's state folder (pairId). */
  readonly pair: string;
  /** A named pair's name (SYNC_PAIR_<NAME>_PATH2, issue 11). */
  readonly name?: string;
  /** From the snapshot's header (credentials masked); absent before the first successful run. */
  readonly path1?: string;
  readonly path2?: string;
  readonly health: HealthVerdict;
  readonly current: CurrentRunStatus | null;
  /** The next time SYNC_SCHEDULE fires: when a daemon with this schedule runs the pair. */
  readonly nextRun: string | null;
  readonly runs: RunRecord[];
}

/** The pairs `status` shows: the configured one, or without SYNC_PATH2 every pair of the state folder. */
export async function pairsOf(config: Config): Promise<string[]> {
  const { path1, path2, stateDir } = config.engine;
  return path2 ? [pairId(path1, path2)] : pairDirsIn(stateDir);
}

/**
 * The one pair `health` judges: the configured one, or without SYNC_PATH2 the state folder's
 * only pair. undefined when there is none yet (nothing has run).
 */
export async function thePair(config: Config): Promise<string | undefined> {
  const pairs = await pairsOf(config);
  if (pairs.length > 1) {
    throw new ConfigError(`SYNC_PATH2 (--path2) is not set and the state folder ${config.engine.stateDir} holds ${pairs.length} pairs (${pairs.join(', ')}): set SYNC_PATH1 and SYNC_PATH2 to pick one`);
  }
  return pairs[0];
}

export async function pairStatus(config: Config, stateDir: string, pair: string, now = new Date()): Promise<PairStatus> {
  const paths = pairPaths(stateDir, pair);
  const [runs, holder, progress, header] = await Promise.all([readHistory(paths.history), lockHolder(paths, now.getTime()), readProgress(paths), snapshotHeader(paths.snapshot)]);
  const current: CurrentRunStatus | null = holder
    ? {
        since: holder.since,
        pid: holder.pid,
        host: holder.host,
        // A progress file older than the lock is a killed run's leftover.
        ...(progress && progress.updatedAt >= holder.since ? { progress: progress.progress, progressAt: progress.updatedAt } : {}),
      }
    : null;
  return {
    pair,
    ...(header?.path1 ? { path1: header.path1 } : {}),
    ...(header?.path2 ? { path2: header.path2 } : {}),
    health: healthVerdict(runs, now, maxAgeOf(config, now)),
    current,
    nextRun: nextScheduled(config.appliance.schedule, now),
    runs,
  };
}

function nextScheduled(schedule: string, now: Date): string | null {
  const timezone = scheduleTimezone();
  const cron = new Cron(schedule, { paused: true, ...(timezone ? { timezone } : {}) });
  try {
    return cron.nextRun(now)?.toISOString() ?? null;
  } finally {
    cron.stop();
  }
}

/** The snapshot's first line only: a snapshot of a million files is not read for two paths. */
export async function snapshotHeader(file: string): Promise<{ path1?: string; path2?: string } | undefined> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const buffer = Buffer.alloc(16 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const line = buffer.subarray(0, bytesRead).toString('utf8').split('\n')[0] ?? '';
    return JSON.parse(line) as { path1?: string; path2?: string };
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/** A time as the logs show it: local to TZ, with the zone's name. */
export function localTime(iso: string, timezone = scheduleTimezone()): string {
  return new Date(iso).toLocaleString('sv-SE', {
    ...(timezone ? { timeZone: timezone } : {}),
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  });
}

export function formatStatus(statuses: readonly PairStatus[], now = new Date()): string {
  const lines: string[] = [];
  const ago = (iso: string) => formatDuration(Math.abs(now.getTime() - Date.parse(iso)));
  for (const s of statuses) {
    if (lines.length > 0) lines.push('');
    lines.push(`pair ${s.name ? `${s.name} (${s.pair})` : s.pair}${s.path1 && s.path2 ? `: ${s.path1} <-> ${s.path2}` : ''}`);
    lines.push(`  health:   ${s.health.healthy ? 'healthy' : 'UNHEALTHY'}: ${s.health.reason.replace(ISO_TIME, (iso) => localTime(iso))}`);
    lines.push(`  now:      ${s.current ? describeCurrent(s.current, ago) : 'no run in progress'}`);
    if (s.nextRun) lines.push(`  next run: ${localTime(s.nextRun)} (in ${formatDuration(Math.max(0, Date.parse(s.nextRun) - now.getTime()))}), if a daemon with this SYNC_SCHEDULE runs it`);
    if (s.runs.length === 0) {
      lines.push('  no runs recorded yet');
      continue;
    }
    lines.push(`  last runs (newest last):`);
    lines.push(`    ${'started'.padEnd(23)} ${'outcome'.padEnd(11)} ${'secs'.padStart(7)} ${'->p1'.padStart(6)} ${'->p2'.padStart(6)} ${'del'.padStart(6)} ${'confl'.padStart(5)}  note`);
    for (const r of s.runs.slice(-10)) {
      const c = r.counts;
      const note = [r.dryRun ? 'dry-run' : '', r.resync ? 'resync' : '', r.message ?? ''].filter(Boolean).join('; ');
      lines.push(
        `    ${localTime(r.startedAt).padEnd(23)} ${r.outcome.padEnd(11)} ${(r.durationMs / 1000).toFixed(1).padStart(7)} ${String(c?.copiesToPath1 ?? 0).padStart(6)} ${String(c?.copiesToPath2 ?? 0).padStart(6)} ${String((c?.deletesOnPath1 ?? 0) + (c?.deletesOnPath2 ?? 0)).padStart(6)} ${String(c?.conflicts ?? 0).padStart(5)}  ${note}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

function describeCurrent(current: CurrentRunStatus, ago: (iso: string) => string): string {
  const who = current.pid ? `pid ${current.pid} on ${current.host}` : 'another process';
  const head = `running since ${localTime(current.since)} (${ago(current.since)}, ${who})`;
  const p = current.progress;
  if (!p) return head;
  const parts = [`phase ${p.phase}`, `listed ${p.listed.path1} + ${p.listed.path2} files`];
  if (p.counts) parts.push(`plan: ${p.counts.copiesToPath2} to path2, ${p.counts.copiesToPath1} to path1, ${p.counts.deletesOnPath1 + p.counts.deletesOnPath2} deletions, ${(p.counts.movesOnPath1 ?? 0) + (p.counts.movesOnPath2 ?? 0)} moves, ${p.counts.conflicts} conflicts`);
  for (const [direction, t] of Object.entries(p.transfers ?? {})) {
    if (t) parts.push(`${direction === 'toPath1' ? 'to path1' : 'to path2'}: ${t.transfers}/${t.totalTransfers} files, ${megabytes(t.bytes)}/${megabytes(t.totalBytes)}`);
  }
  return `${head}; ${parts.join('; ')}`;
}

const ISO_TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z/g;
const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
