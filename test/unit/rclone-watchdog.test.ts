/** The stall watchdog and the appliance's rclone defaults, with fake timers (no real waiting). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { APPLIANCE_DEFAULTS, defaultArgs } from '../../src/rclone/defaults.ts';
import type { TransferProgress } from '../../src/model.ts';
import { formatDuration, Watchdog } from '../../src/rclone/watchdog.ts';

const stats = (bytes: number, more: Partial<TransferProgress> = {}): TransferProgress => ({
  bytes,
  totalBytes: 1000,
  transfers: 0,
  totalTransfers: 2,
  errors: 0,
  checks: 0,
  deletes: 0,
  renames: 0,
  ...more,
});

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function watch(stallMs: number, withReports = false) {
  const onStall = vi.fn();
  const onReport = vi.fn();
  const watchdog = new Watchdog({ stallMs, reportEveryMs: 60_000, onStall, ...(withReports ? { onReport } : {}) });
  return { watchdog, onStall, onReport };
}

describe('Watchdog', () => {
  it('stalls once when nothing is reported for the whole period', () => {
    const { watchdog, onStall } = watch(10_000);
    vi.advanceTimersByTime(9_999);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onStall).toHaveBeenCalledTimes(1);
    expect(watchdog.stalled).toBe(true);
    vi.advanceTimersByTime(60_000);
    expect(onStall).toHaveBeenCalledTimes(1);
  });

  it('stalls when stats keep coming but nothing in them moves (a transfer stuck after its last byte)', () => {
    const { watchdog, onStall } = watch(10_000);
    watchdog.stats(stats(1000));
    for (let s = 0; s < 9; s++) {
      vi.advanceTimersByTime(1000);
      watchdog.stats(stats(1000));
    }
    vi.advanceTimersByTime(999);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onStall).toHaveBeenCalledTimes(1);
  });

  it('counts moving bytes, finished files, checks, deletions and renames as progress', () => {
    const { watchdog, onStall } = watch(10_000);
    const steps: Partial<TransferProgress>[] = [{ bytes: 10 }, { bytes: 10, transfers: 1 }, { bytes: 10, transfers: 1, checks: 5 }, { bytes: 10, transfers: 1, checks: 5, deletes: 1 }, { bytes: 10, transfers: 1, checks: 5, deletes: 1, renames: 1 }];
    for (const step of steps) {
      vi.advanceTimersByTime(9_000);
      watchdog.stats(stats(step.bytes ?? 0, step));
    }
    vi.advanceTimersByTime(9_000);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_000);
    expect(onStall).toHaveBeenCalledTimes(1);
  });

  it('counts output (a listing) as progress', () => {
    const { watchdog, onStall } = watch(10_000);
    for (let i = 0; i < 30; i++) {
      vi.advanceTimersByTime(5_000);
      watchdog.activity();
    }
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(10_000);
    expect(onStall).toHaveBeenCalledTimes(1);
  });

  it('never stalls with a stall time of 0, nor once stopped', () => {
    const off = watch(0);
    vi.advanceTimersByTime(3_600_000);
    expect(off.onStall).not.toHaveBeenCalled();
    const stopped = watch(10_000);
    stopped.watchdog.stop();
    vi.advanceTimersByTime(60_000);
    expect(stopped.onStall).not.toHaveBeenCalled();
    expect(stopped.watchdog.stalled).toBe(false);
  });

  it('reports a long transfer every minute with the bytes moved since the last report', () => {
    const { watchdog, onReport } = watch(0, true);
    vi.advanceTimersByTime(30_000);
    watchdog.stats(stats(300_000));
    vi.advanceTimersByTime(30_000);
    expect(onReport).toHaveBeenCalledTimes(1);
    expect(onReport).toHaveBeenLastCalledWith(stats(300_000), 5_000);
    watchdog.stats(stats(900_000, { transfers: 1 }));
    vi.advanceTimersByTime(60_000);
    expect(onReport).toHaveBeenCalledTimes(2);
    expect(onReport).toHaveBeenLastCalledWith(stats(900_000, { transfers: 1 }), 10_000);
    watchdog.stop();
    vi.advanceTimersByTime(600_000);
    expect(onReport).toHaveBeenCalledTimes(2);
  });

  it('reports nothing before the first stats (a short call logs no progress)', () => {
    const { onReport, watchdog } = watch(0, true);
    vi.advanceTimersByTime(120_000);
    expect(onReport).not.toHaveBeenCalled();
    watchdog.stop();
  });
});

describe('formatDuration', () => {
  it('names durations the way the settings take them', () => {
    expect([5_000, 300_000, 5_400_000, 3_600_000, 90_000].map(formatDuration)).toEqual(['5s', '5m', '1h30m', '1h', '1m30s']);
  });
});

describe('defaultArgs', () => {
  it('gives every default when the user set none', () => {
    expect(defaultArgs([], {})).toEqual(APPLIANCE_DEFAULTS.flat());
    expect(defaultArgs([], {})).toEqual(['--contimeout', '30s', '--timeout', '2m', '--low-level-retries', '5', '--retries', '2']);
  });

  it("takes the user's SYNC_RCLONE_ARGS value, in either spelling, for every call", () => {
    const args = defaultArgs(['--transfers', '8', '--timeout', '10m', '--retries=5'], {});
    expect(args).toEqual(['--contimeout', '30s', '--timeout', '10m', '--low-level-retries', '5', '--retries', '5']);
  });

  it('leaves out a flag the user set as an RCLONE_* variable (a flag would override it)', () => {
    expect(defaultArgs([], { RCLONE_CONTIMEOUT: '5s', RCLONE_LOW_LEVEL_RETRIES: '1' })).toEqual(['--timeout', '2m', '--retries', '2']);
  });
});

describe('SYNC_STALL_TIMEOUT', () => {
  const base = { SYNC_PATH2: '/p2' };
  it('defaults to 5m and takes durations and 0', () => {
    expect(loadConfig(base).engine.stallTimeoutMs).toBe(300_000);
    expect(loadConfig({ ...base, SYNC_STALL_TIMEOUT: '30s' }).engine.stallTimeoutMs).toBe(30_000);
    expect(loadConfig(base, { SYNC_STALL_TIMEOUT: '1h' }).engine.stallTimeoutMs).toBe(3_600_000);
    expect(loadConfig({ ...base, SYNC_STALL_TIMEOUT: '0' }).engine.stallTimeoutMs).toBe(0);
  });

  it.each(['soon', '-5m', '2s', '5 minutes'])('refuses %j naming the setting, its flag and what it takes', (value) => {
    const attempt = () => loadConfig({ ...base, SYNC_STALL_TIMEOUT: value });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/SYNC_STALL_TIMEOUT \(--stall-timeout\).*30s, 5m.*0 to never.*got "/);
  });
});
