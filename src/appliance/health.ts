/**
 * Is this pair healthy? One verdict, computed from the run history alone, shared by
 * `rclonesync health` (Docker HEALTHCHECK, a separate process) and the daemon's /healthz.
 */
import { Cron } from 'croner';
import type { Config } from '../config.ts';
import { lastSuccess, readHistory, type RunRecord } from '../state/history.ts';
import { pairId, pairPaths } from '../state/pair.ts';

export interface HealthVerdict {
  readonly healthy: boolean;
  /** One sentence for a person: why healthy or not. */
  readonly reason: string;
  readonly maxAgeMs: number;
  /** The last run that counts (runs that found the lock held are ignored). */
  readonly lastRun?: { readonly outcome: string; readonly endedAt: string; readonly message?: string; readonly gate?: string };
  readonly lastSuccessAt?: string;
  readonly lastSuccessAgeMs?: number;
}

/**
 * The verdict, from the history (newest last), the current time and the largest age the last
 * success may have. Pure: no I/O, no clock.
 *
 * Healthy when the last run that got the lock succeeded and the last success ended less than
 * maxAgeMs ago. A run that found the lock held says nothing about the pair and is ignored. A
 * safety stop keeps the pair unhealthy until a run succeeds, whatever happens in between.
 */
export function healthVerdict(history: readonly RunRecord[], now: Date | number, maxAgeMs: number): HealthVerdict {
  const nowMs = typeof now === 'number' ? now : now.getTime();
  const runs = history.filter((r) => r.outcome !== 'locked');
  const last = runs.at(-1);
  if (!last) return { healthy: false, reason: 'no run has finished yet', maxAgeMs };
  const success = lastSuccess(runs);
  const lastRun = {
    outcome: last.outcome,
    endedAt: last.endedAt,
    ...(last.message !== undefined ? { message: last.message } : {}),
    ...(last.gate !== undefined ? { gate: last.gate } : {}),
  };
  const successInfo = success ? { lastSuccessAt: success.endedAt, lastSuccessAgeMs: nowMs - Date.parse(success.endedAt) } : {};
  const base = { maxAgeMs, lastRun, ...successInfo };

  if (last.outcome !== 'success') {
    const since = success ? `; last success ${success.endedAt}` : '; no run has succeeded yet';
    if (last.outcome === 'safety-stop') {
      return { ...base, healthy: false, reason: `safety stop${last.gate ? ` (${last.gate})` : ''} at ${last.endedAt}: ${last.message ?? 'no message'}; a person must look${since}` };
    }
    // A safety stop stays the headline until a run succeeds, even if later runs failed otherwise.
    const successIndex = success ? runs.lastIndexOf(success) : -1;
    const stop = runs.slice(successIndex + 1).findLast((r) => r.outcome === 'safety-stop');
    const stopNote = stop ? `; earlier safety stop${stop.gate ? ` (${stop.gate})` : ''} at ${stop.endedAt} not cleared: ${stop.message ?? 'no message'}` : '';
    return { ...base, healthy: false, reason: `last run ${last.outcome} at ${last.endedAt}: ${last.message ?? 'no message'}${stopNote}${since}` };
  }

  const age = nowMs - Date.parse(last.endedAt);
  if (age > maxAgeMs) {
    return { ...base, healthy: false, reason: `last success ${last.endedAt} is ${formatDuration(age)} old, more than the allowed ${formatDuration(maxAgeMs)} (SYNC_HEALTH_MAX_AGE)` };
  }
  return { ...base, healthy: true, reason: `last run succeeded ${last.endedAt} (${formatDuration(Math.max(0, age))} ago)` };
}

/**
 * The time zone for croner: TZ if it is an IANA name (Europe/Berlin); otherwise undefined, and
 * croner uses Node's local time, which follows TZ too (POSIX forms such as "CET-1CEST").
 */
export function scheduleTimezone(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const tz = env.TZ?.trim();
  if (!tz) return undefined;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz;
  } catch {
    return undefined;
  }
}

/**
 * Twice the interval of the schedule: the gap between its next two run times, or, when the gaps
 * differ (weekdays only, office hours), the largest gap among the few runs before and after now,
 * so a quiet weekend does not look like an outage.
 */
export function defaultMaxAgeMs(schedule: string, timezone: string | undefined, now: Date = new Date()): number {
  const cron = new Cron(schedule, { paused: true, ...(timezone ? { timezone } : {}) });
  try {
    // Gaps within each list only: the two runs either side of `now` are not neighbours when now
    // itself is a run time (neither list includes it).
    let gap = 0;
    for (const runs of [cron.nextRuns(8, now), cron.previousRuns(8, now)]) {
      for (let i = 1; i < runs.length; i++) gap = Math.max(gap, Math.abs(runs[i]!.getTime() - runs[i - 1]!.getTime()));
    }
    // A schedule with a single run left (or none) has no interval: allow a day.
    return 2 * (gap > 0 ? gap : 86_400_000);
  } finally {
    cron.stop();
  }
}

export function maxAgeOf(config: Config, now: Date = new Date()): number {
  return config.appliance.healthMaxAgeMs ?? defaultMaxAgeMs(config.appliance.schedule, scheduleTimezone(), now);
}

/** `pair`: the pair folder's name; by default the configured pair's. */
export async function readVerdict(config: Config, now: Date = new Date(), pair = pairId(config.engine.path1, config.engine.path2)): Promise<HealthVerdict> {
  const paths = pairPaths(config.engine.stateDir, pair);
  return healthVerdict(await readHistory(paths.history), now, maxAgeOf(config, now));
}

export async function checkHealth(config: Config, out: NodeJS.WritableStream, pair?: string): Promise<number> {
  let verdict: HealthVerdict;
  try {
    verdict = await readVerdict(config, new Date(), pair);
  } catch (error) {
    out.write(`unhealthy: cannot read the run history: ${(error as Error).message}\n`);
    return 1;
  }
  out.write(`${verdict.healthy ? 'healthy' : 'unhealthy'}: ${verdict.reason}\n`);
  return verdict.healthy ? 0 : 1;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m}m`;
  const h = ms / 3_600_000;
  if (h < 48) return `${Number.isInteger(h) ? h : h.toFixed(1)}h`;
  const d = ms / 86_400_000;
  return `${Number.isInteger(d) ? d : d.toFixed(1)}d`;
}
