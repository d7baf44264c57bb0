/**
 * The daemon never ends on its own with exit 0: a schedule with no next time (which the settings
 * refuse, but which a schedule can still become) stops it with exit 1 and says why.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runDaemon } from '../../src/appliance/daemon.ts';
import { loadPairs } from '../../src/pairs.ts';
import { createLogger } from '../../src/log.ts';

describe('runDaemon', () => {
  it('a schedule without a next run time ends the daemon with exit 1 and an error line', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', format: 'json' }, new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }));
    const [pair] = loadPairs({ SYNC_PATH1: '/nonexistent-a', SYNC_PATH2: '/nonexistent-b', SYNC_STATE_DIR: '/nonexistent-state', SYNC_RUN_ON_START: 'false', SYNC_WATCH: 'false' });
    const config = pair!.config;
    // Past the settings' check: croner's year field, in the past.
    const exhausted = { ...config, appliance: { ...config.appliance, schedule: '0 0 0 1 1 * 2020' } };
    expect(await runDaemon([{ ...pair!, config: exhausted }], logger)).toBe(1);
    expect(lines.join('')).toContain('SYNC_SCHEDULE has no next run time: stopping the daemon with exit 1');
  });

  it('with several pairs, one whose schedule ends stops only itself; the daemon goes on', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', format: 'json' }, new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }));
    const pairs = loadPairs({
      SYNC_STATE_DIR: '/nonexistent-state',
      SYNC_RUN_ON_START: 'false',
      SYNC_WATCH: 'false',
      SYNC_PAIR_OLD_PATH1: '/nonexistent-old',
      SYNC_PAIR_OLD_PATH2: '/nonexistent-old2',
      SYNC_PAIR_LIVE_PATH1: '/nonexistent-live',
      SYNC_PAIR_LIVE_PATH2: '/nonexistent-live2',
      SYNC_PAIR_LIVE_SCHEDULE: '0 3 * * *',
    });
    const withEnded = pairs.map((p) => (p.name === 'old' ? { ...p, config: { ...p.config, appliance: { ...p.config.appliance, schedule: '0 0 0 1 1 * 2020' } } } : p));
    let code: number | undefined;
    void runDaemon(withEnded, logger).then((c) => (code = c));
    await expect.poll(() => lines.join(''), { timeout: 20_000 }).toContain('this pair runs no more; the other pairs go on');
    expect(lines.join('')).toMatch(/"pair":"live".*next run at/);
    expect(code).toBeUndefined();
    process.emit('SIGTERM', 'SIGTERM');
    await expect.poll(() => code, { timeout: 20_000 }).toBe(0);
  });
});
