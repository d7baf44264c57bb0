/**
 * The daemon never ends on its own with exit 0: a schedule with no next time (which the settings
 * refuse, but which a schedule can still become) stops it with exit 1 and says why.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runDaemon } from '../../src/appliance/daemon.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';

describe('runDaemon', () => {
  it('a schedule without a next run time ends the daemon with exit 1 and an error line', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', format: 'json' }, new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }));
    const config = loadConfig({ SYNC_PATH1: '/nonexistent-a', SYNC_PATH2: '/nonexistent-b', SYNC_STATE_DIR: '/nonexistent-state', SYNC_RUN_ON_START: 'false' });
    // Past the settings' check: croner's year field, in the past.
    const exhausted = { ...config, appliance: { ...config.appliance, schedule: '0 0 0 1 1 * 2020' } };
    expect(await runDaemon(exhausted, logger)).toBe(1);
    expect(lines.join('')).toContain('SYNC_SCHEDULE has no next run time: stopping the daemon with exit 1');
  });
});
