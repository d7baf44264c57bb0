import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultMaxAgeMs, formatDuration, healthVerdict, checkHealth, scheduleTimezone } from '../../src/appliance/health.ts';
import { loadConfig } from '../../src/config.ts';
import type { Outcome } from '../../src/errors.ts';
import { appendHistory, type RunRecord } from '../../src/state/history.ts';
import { pairId, pairPaths } from '../../src/state/pair.ts';
import { runRecord } from '../helpers/records.ts';

const NOW = Date.parse('2025-06-04T12:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;

const run = (outcome: Outcome, minutesAgo: number, extra: Partial<RunRecord> = {}): RunRecord =>
  runRecord(outcome, { endedAt: NOW - minutesAgo * MIN }, extra);

describe('healthVerdict', () => {
  const maxAge = HOUR;
  const table: { name: string; history: RunRecord[]; healthy: boolean; reason: RegExp }[] = [
    { name: 'no history', history: [], healthy: false, reason: /no run has finished yet/ },
    { name: 'only runs that found the lock held', history: [run('locked', 5), run('locked', 1)], healthy: false, reason: /no run has finished yet/ },
    { name: 'recent success', history: [run('success', 10)], healthy: true, reason: /last run succeeded .* \(10m ago\)/ },
    { name: 'success exactly at the limit', history: [run('success', 60)], healthy: true, reason: /succeeded/ },
    { name: 'success too old', history: [run('success', 61)], healthy: false, reason: /is 61m old, more than the allowed 60m/ },
    {
      name: 'last run failed after a success',
      history: [run('success', 30), run('failed', 1, { message: 'rclone lsjson failed with exit code 1: connection refused' })],
      healthy: false,
      reason: /last run failed at .*: rclone lsjson failed with exit code 1: connection refused; last success/,
    },
    { name: 'failed with no success ever', history: [run('failed', 1, { message: 'boom' })], healthy: false, reason: /last run failed .*boom; no run has succeeded yet/ },
    {
      name: 'safety stop',
      history: [run('success', 30), run('safety-stop', 1, { gate: 'max-delete', message: 'would delete 80% of path2' })],
      healthy: false,
      reason: /safety stop \(max-delete\) at .*: would delete 80% of path2; a person must look/,
    },
    {
      name: 'a lock-held run after a success is ignored',
      history: [run('success', 5), run('locked', 1)],
      healthy: true,
      reason: /succeeded/,
    },
    {
      name: 'a lock-held run after a failure does not hide it',
      history: [run('success', 50), run('failed', 5, { message: 'x' }), run('locked', 1)],
      healthy: false,
      reason: /last run failed/,
    },
    {
      name: 'a safety stop stays the headline through later failures',
      history: [run('success', 50), run('safety-stop', 20, { gate: 'side-missing', message: 'path2 vanished' }), run('failed', 10, { message: 'net down' }), run('cancelled', 1, { message: 'run cancelled by a signal' })],
      healthy: false,
      reason: /last run cancelled .*earlier safety stop \(side-missing\) .* not cleared: path2 vanished/,
    },
    {
      name: 'a success clears an earlier safety stop',
      history: [run('safety-stop', 20, { gate: 'max-delete', message: 'm' }), run('success', 1)],
      healthy: true,
      reason: /succeeded/,
    },
    { name: 'cancelled is not success', history: [run('success', 5), run('cancelled', 1, { message: 'run cancelled by a signal' })], healthy: false, reason: /last run cancelled/ },
  ];
  for (const row of table) {
    it(row.name, () => {
      const verdict = healthVerdict(row.history, NOW, maxAge);
      expect(verdict.healthy).toBe(row.healthy);
      expect(verdict.reason).toMatch(row.reason);
      expect(verdict.maxAgeMs).toBe(maxAge);
    });
  }

  it('reports the last run and the age of the last success', () => {
    const verdict = healthVerdict([run('success', 30), run('failed', 2, { message: 'x' })], new Date(NOW), maxAge);
    expect(verdict.lastRun).toMatchObject({ outcome: 'failed', message: 'x' });
    expect(verdict.lastSuccessAgeMs).toBe(30 * MIN);
  });
});

describe('defaultMaxAgeMs', () => {
  const now = new Date('2025-06-04T12:00:10Z'); // a Wednesday
  it('is twice the interval of a regular schedule', () => {
    expect(defaultMaxAgeMs('*/30 * * * *', undefined, now)).toBe(2 * 30 * MIN);
    expect(defaultMaxAgeMs('* * * * * *', undefined, now)).toBe(2_000);
    expect(defaultMaxAgeMs('0 3 * * *', 'Europe/Berlin', now)).toBe(48 * HOUR);
  });
  it('covers the longest gap of an irregular schedule (a weekend)', () => {
    expect(defaultMaxAgeMs('0 9 * * 1-5', 'UTC', now)).toBe(2 * 72 * HOUR);
  });
});

describe('scheduleTimezone', () => {
  it('passes IANA names and leaves POSIX forms to Node', () => {
    expect(scheduleTimezone({ TZ: 'Europe/Berlin' })).toBe('Europe/Berlin');
    expect(scheduleTimezone({})).toBeUndefined();
    expect(scheduleTimezone({ TZ: 'CET-1CEST,M3.5.0,M10.5.0/3' })).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it('reads well', () => {
    expect(formatDuration(5_000)).toBe('5s');
    expect(formatDuration(90 * MIN)).toBe('90m');
    expect(formatDuration(3 * HOUR)).toBe('3h');
    expect(formatDuration(72 * HOUR)).toBe('3d');
  });
});

describe('checkHealth', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function health(env: Record<string, string>): Promise<{ code: number; text: string }> {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk) => (text += String(chunk)));
    const code = await checkHealth(loadConfig(env), out);
    return { code, text };
  }

  it('reads the pair history in the state directory', async () => {
    dir = await mkdtemp(join(tmpdir(), 'rclonesync-health-'));
    const env = { SYNC_PATH1: '/a', SYNC_PATH2: 'remote:b', SYNC_STATE_DIR: dir, SYNC_SCHEDULE: '*/10 * * * *' };
    expect(await health(env)).toEqual({ code: 1, text: 'unhealthy: no run has finished yet\n' });

    const paths = pairPaths(dir, pairId('/a', 'remote:b'));
    const { mkdir } = await import('node:fs/promises');
    await mkdir(paths.dir, { recursive: true });
    const ended = new Date(Date.now() - 5 * MIN).toISOString();
    await appendHistory(paths.history, { ...run('success', 0), endedAt: ended, pair: 'x' });
    const ok = await health(env);
    expect(ok.code).toBe(0);
    expect(ok.text).toMatch(/^healthy: last run succeeded/);

    // Older than twice the 10-minute interval, unless SYNC_HEALTH_MAX_AGE allows more.
    await appendHistory(paths.history, { ...run('success', 0), endedAt: new Date(Date.now() - 25 * MIN).toISOString() });
    const old = await health(env);
    expect(old.code).toBe(1);
    expect(old.text).toMatch(/more than the allowed 20m/);
    expect((await health({ ...env, SYNC_HEALTH_MAX_AGE: '1h' })).code).toBe(0);

    await appendHistory(paths.history, run('safety-stop', 0, { endedAt: new Date().toISOString(), gate: 'check-access', message: 'check files missing' }));
    const stopped = await health({ ...env, SYNC_HEALTH_MAX_AGE: '1h' });
    expect(stopped.code).toBe(1);
    expect(stopped.text).toMatch(/unhealthy: safety stop \(check-access\).*check files missing/);
  });
});

describe('rclonesync health with a broken setting', () => {
  it('exits 1 (never 2, which Docker reserves) and says why', async () => {
    const { execa } = await import('execa');
    const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
    const result = await execa(process.execPath, [cli, 'health'], { env: { PATH: process.env.PATH ?? '' }, extendEnv: false, reject: false });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/unhealthy: SYNC_PATH2 \(--path2\) is required/);
  });
});
