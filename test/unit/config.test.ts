/**
 * `loadConfig`'s refusals, in process: every setting that can be given a bad value is given some,
 * and the ConfigError must name the variable with its flag (`SYNC_MAX_DELETE (--max-delete)`) and
 * the value it got, since that message is all a user sees before exit 2. The CLI's own wiring of
 * such errors (exit 2, stderr, nothing touched) is tested once in integration/engine-config.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig, SETTINGS } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { CONFLICT_RESOLVES } from '../../src/model.ts';
import { EVERY_SETTING } from '../helpers/settings.ts';

/** A valid pair: every case below changes one setting only. */
const BASE = { SYNC_PATH1: '/data', SYNC_PATH2: 'remote:backup' } as const;

const flagOf = (env: string) => SETTINGS.find((s) => s.env === env)!.flag;

/** The ConfigError `loadConfig` throws for `env` (with BASE underneath). */
function refusal(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig({ ...BASE, ...env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

const NOT_A_BOOLEAN = ['maybe', 'yes please', '2', 'on?'];

/** Each setting with the bad values it must refuse. */
const BAD_VALUES: Record<string, readonly string[]> = {
  SYNC_RESYNC: NOT_A_BOOLEAN,
  SYNC_DRY_RUN: NOT_A_BOOLEAN,
  SYNC_FORCE: NOT_A_BOOLEAN,
  SYNC_CHECK_ACCESS: NOT_A_BOOLEAN,
  SYNC_RUN_ON_START: NOT_A_BOOLEAN,
  SYNC_WATCH: NOT_A_BOOLEAN,
  SYNC_MAX_DELETE: ['abc', '150', '-5', '100.5', '5 0'],
  // Blank (spaces only) counts as unset, like an empty variable in a compose file: the default applies.
  SYNC_CHECK_FILENAME: ['dir/RCLONE_TEST'],
  SYNC_COMPARE: ['foo', 'modtime', 'size'],
  SYNC_CONFLICT_RESOLVE: ['foo', 'newest', 'both'],
  // A shell would do more than split these words; shell-quote alone would accept an unterminated quote.
  SYNC_RCLONE_ARGS: ['--transfers 4 | rm -rf /', '--bwlimit 1M > /tmp/out', '--transfers 4 # comment', '--exclude "a b', "--exclude 'a b", '--bwlimit 1M \\'],
  // rclone reports progress once a second: a shorter wait would stop transfers that are moving.
  SYNC_STALL_TIMEOUT: ['soon', '2s', '-5m'],
  SYNC_TRASH_DAYS: ['a week', '-1', '7d'],
  // path1 is local (/data): its trash must be local too, and not path1 itself.
  SYNC_TRASH_PATH1: ['other:trash', '/data', '/data/'],
  // path2 is on `remote:`: its trash must be there too, and not path2 itself.
  SYNC_TRASH_PATH2: ['/local/trash', 'elsewhere:trash', 'remote:backup'],
  SYNC_TRACK_RENAMES: NOT_A_BOOLEAN,
  SYNC_EMPTY_DIRS: NOT_A_BOOLEAN,
  SYNC_LOCAL_LISTING: ['node', 'lsjson'],
  LOG_LEVEL: ['loud', 'trace'],
  LOG_FORMAT: ['xml', 'text'],
  SYNC_SCHEDULE: ['bogus', '0 0 30 2 *', '* * * * * * *', '*/30 * *'],
  SYNC_HEALTH_MAX_AGE: ['forever', '0', '-1h'],
  SYNC_WATCH_DELAY: ['soon', '0', '50ms', '-10s'],
  SYNC_HTTP_PORT: ['99999', 'eighty', '-1'],
  SYNC_PING_URL: ['notaurl', 'ftp://example.invalid/x'],
  SYNC_NOTIFY_URL: ['notaurl', 'ftp://example.invalid/x'],
};

/** Settings that take any value loadConfig can see, and why. */
const ANY_VALUE: Record<string, string> = {
  SYNC_PATH1: 'any rclone path; only its being SYNC_PATH2 is refused (below)',
  SYNC_PATH2: 'any rclone path; only a missing or empty one is refused (below)',
  SYNC_STATE_DIR: 'any folder; whether it is writable is checked at start (preflight)',
  SYNC_FILTERS_FILE: 'any path; the file is read, and its rules checked, when a run starts',
  SYNC_RCLONE_BINARY: 'any command; whether it runs shows when rclone is first called',
};

describe('loadConfig refuses bad values, naming the variable, its flag and the value', () => {
  it('every setting either has bad values here or says why it takes any value', () => {
    expect([...Object.keys(BAD_VALUES), ...Object.keys(ANY_VALUE)].sort()).toEqual([...EVERY_SETTING].sort());
  });

  const cases = Object.entries(BAD_VALUES).flatMap(([env, values]) => values.map((value) => [env, value] as const));
  it.each(cases)('%s=%j', (env, value) => {
    const { message } = refusal({ [env]: value });
    expect(message).toContain(`${env} (--${flagOf(env)})`);
    expect(message).toContain(`"${value}"`);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['blank', '   '],
  ])('SYNC_PATH2 %s', (_, value) => {
    expect(refusal({ SYNC_PATH2: value }).message).toMatch(/^SYNC_PATH2 \(--path2\) is required/);
  });

  it('SYNC_PATH1 and SYNC_PATH2 the same path', () => {
    expect(refusal({ SYNC_PATH1: '/same', SYNC_PATH2: '/same' }).message).toContain('SYNC_PATH1 and SYNC_PATH2 are the same path ("/same")');
  });

  it('a value given as a flag (an override) is refused the same way', () => {
    expect(() => loadConfig({ ...BASE }, { SYNC_MAX_DELETE: 'abc' })).toThrow(/^SYNC_MAX_DELETE \(--max-delete\) must be a percentage from 0 to 100 \(got "abc"\)$/);
  });

  it('says what a boolean and a port must be (the wording env-var had, which our parsers replaced)', () => {
    expect(refusal({ SYNC_TRACK_RENAMES: 'yes' }).message).toBe('SYNC_TRACK_RENAMES (--track-renames): should be either "true", "false", "TRUE", or "FALSE" (got "yes")');
    expect(loadConfig({ ...BASE, SYNC_TRACK_RENAMES: 'FALSE' }).engine.trackRenames).toBe(false);
    expect(loadConfig({ ...BASE, SYNC_TRACK_RENAMES: 'True' }).engine.trackRenames).toBe(true);
    expect(refusal({ SYNC_HTTP_PORT: '99999' }).message).toBe('SYNC_HTTP_PORT (--http-port): cannot assign a port number greater than 65535 (got "99999")');
    expect(refusal({ SYNC_HTTP_PORT: '-1' }).message).toBe('SYNC_HTTP_PORT (--http-port): should be a positive integer (got "-1")');
    expect(refusal({ SYNC_HTTP_PORT: '80x' }).message).toBe('SYNC_HTTP_PORT (--http-port): should be a valid integer (got "80x")');
  });

  it('says what is accepted', () => {
    expect(refusal({ SYNC_COMPARE: 'foo' }).message).toMatch(/must be one of size,modtime, checksum/);
    expect(refusal({ SYNC_CONFLICT_RESOLVE: 'foo' }).message).toContain(`must be one of ${CONFLICT_RESOLVES.join(', ')}`);
    expect(refusal({ LOG_LEVEL: 'loud' }).message).toMatch(/must be one of debug, info, warn, error/);
    expect(refusal({ SYNC_SCHEDULE: '0 0 30 2 *' }).message).toMatch(/never fires/);
  });

  it('the valid pair with nothing else set loads (the cases above fail for their own value only)', () => {
    expect(loadConfig({ ...BASE }).engine).toMatchObject({ path1: '/data', path2: 'remote:backup', maxDeletePercent: 50 });
  });
});
