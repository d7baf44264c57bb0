/**
 * The settings table's own invariants (src/config.ts SETTINGS): every default parses back to
 * itself, every choice list is what the help names, every setting refuses a bad value naming its
 * variable and flag, and --help and README show each row with its default. What loadConfig does
 * with the values (cross-setting rules) is config-load.test.ts's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  defaultOf,
  defaultText,
  helpText,
  LOG_FORMATS,
  LOG_LEVELS,
  readmeRowStart,
  SETTINGS,
  settingsFor,
  showDuration,
  variableFor,
  type AnySetting,
  type ParseContext,
  type SettingName,
} from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { COMPARE_MODES, CONFLICT_RESOLVES } from '../../src/model.ts';

const ctxFor = (setting: AnySetting, env: Record<string, string> = {}, isTty = false): ParseContext => ({ name: `${setting.env} (--${setting.flag})`, env, isTty });
const rows = SETTINGS.map((s) => [s.env, s] as const);
const byEnv = (env: SettingName) => SETTINGS.find((s) => s.env === env)!;

/** A bad value for each setting; [] where any text is accepted (a path, a program). */
const BAD_VALUES: Record<SettingName, readonly string[]> = {
  SYNC_PATH1: [],
  SYNC_PATH2: [],
  SYNC_STATE_DIR: [],
  SYNC_RESYNC: ['yes please'],
  SYNC_DRY_RUN: ['maybe', '1'],
  SYNC_MAX_DELETE: ['abc', '150', '-5'],
  SYNC_FORCE: ['2'],
  SYNC_CHECK_ACCESS: ['on?'],
  SYNC_CHECK_FILENAME: ['dir/RCLONE_TEST'],
  SYNC_FILTERS_FILE: [],
  SYNC_COMPARE: ['foo'],
  SYNC_CONFLICT_RESOLVE: ['foo', 'newest'],
  SYNC_RCLONE_ARGS: ['--transfers 4 | rm -rf /', '--exclude "a b'],
  SYNC_STALL_TIMEOUT: ['1s', 'soon'],
  SYNC_RCLONE_BINARY: [],
  SYNC_TRASH_DAYS: ['-1', 'a week'],
  SYNC_TRASH_PATH1: [],
  SYNC_TRASH_PATH2: [],
  SYNC_TRACK_RENAMES: ['perhaps'],
  SYNC_EMPTY_DIRS: ['sure'],
  SYNC_LOCAL_LISTING: ['node', 'lsjson'],
  LOG_LEVEL: ['loud'],
  LOG_FORMAT: ['xml'],
  SYNC_SCHEDULE: ['bogus', '0 0 30 2 *', '* * * * * * *'],
  SYNC_RUN_ON_START: ['sometimes'],
  SYNC_WATCH: ['often'],
  SYNC_WATCH_DELAY: ['soon', '0'],
  SYNC_HEALTH_MAX_AGE: ['forever', '0'],
  SYNC_HTTP_PORT: ['99999', 'eighty'],
  SYNC_PING_URL: ['notaurl', 'ftp://example.invalid/x'],
  SYNC_NOTIFY_URL: ['notaurl'],
};

describe('the settings table', () => {
  it('names each variable and flag once; the flag is the variable in lower case without SYNC_', () => {
    expect(new Set(SETTINGS.map((s) => s.env)).size).toBe(SETTINGS.length);
    expect(new Set(SETTINGS.map((s) => s.flag)).size).toBe(SETTINGS.length);
    for (const s of SETTINGS) expect(s.flag).toBe(s.env.replace(/^SYNC_/, '').toLowerCase().replaceAll('_', '-'));
  });

  it('the bad-value list below covers every setting', () => {
    expect(Object.keys(BAD_VALUES).sort()).toEqual(SETTINGS.map((s) => s.env).sort());
  });

  it('the process-wide settings are the HTTP port and the logs', () => {
    expect(SETTINGS.filter((s) => s.scope === 'process').map((s) => s.env)).toEqual(['LOG_LEVEL', 'LOG_FORMAT', 'SYNC_HTTP_PORT']);
  });

  it('choices come from the shared lists', () => {
    expect(byEnv('SYNC_CONFLICT_RESOLVE').choices).toEqual(CONFLICT_RESOLVES);
    expect(byEnv('SYNC_COMPARE').choices).toEqual(COMPARE_MODES);
    expect(byEnv('LOG_LEVEL').choices).toEqual(LOG_LEVELS);
    expect(byEnv('LOG_FORMAT').choices).toEqual(LOG_FORMATS);
  });

  it.each(rows)('%s: its default parses back to itself', (_env, setting) => {
    for (const isTty of [false, true]) {
      const ctx = ctxFor(setting, { HOME: '/home/u' }, isTty);
      const value = defaultOf(setting, ctx);
      if (value === undefined) continue;
      const shown = setting.show(value);
      // An empty text is "unset", which gives the default itself.
      if (shown !== '') expect(setting.parse(shown, ctx)).toEqual(value);
      expect(settingsFor({ HOME: '/home/u' }, '', isTty)[setting.env as SettingName]).toEqual(value);
    }
    if (typeof setting.default === 'function' || setting.default === undefined) {
      // A default that depends on the environment, or none, is described in words (not "[Function]").
      if (typeof setting.default === 'function') expect(setting.shownDefault).toBeDefined();
    }
    expect(setting.kind === 'boolean').toBe(typeof defaultOf(setting, ctxFor(setting)) === 'boolean');
  });

  it.each(rows.filter(([, s]) => s.choices))('%s: every choice is named in its help, parses to itself, and the default is one', (_env, setting) => {
    const ctx = ctxFor(setting);
    for (const choice of setting.choices!) {
      expect(setting.help).toMatch(new RegExp(`(^|[\\s:,(])${choice.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([\\s,.;:)]|$)`));
      expect(setting.parse(choice, ctx)).toBe(choice);
      expect(setting.parse(` ${choice.toUpperCase()} `, ctx)).toBe(choice);
    }
    expect(setting.choices).toContain(defaultOf(setting, ctx));
  });

  it.each(rows.flatMap(([env, s]) => BAD_VALUES[env as SettingName].map((bad) => [env, bad, s] as const)))('%s=%j is a ConfigError naming the variable and its flag', (env, bad, setting) => {
    const attempt = () => settingsFor({ [env]: bad });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(`${env} (--${setting.flag})`);
    expect(attempt).toThrow(`"${bad}"`);
  });

  it('a bad value under a pair prefix names the prefixed variable', () => {
    expect(() => settingsFor({ SYNC_PAIR_PHOTOS_MAX_DELETE: 'abc' }, 'SYNC_PAIR_PHOTOS_')).toThrow('SYNC_PAIR_PHOTOS_MAX_DELETE must be a percentage from 0 to 100 (got "abc")');
  });

  it('a pair prefix reads per-pair settings from their prefixed variables, falling back to the plain ones', () => {
    const prefix = 'SYNC_PAIR_PHOTOS_';
    expect(variableFor(byEnv('SYNC_MAX_DELETE'), prefix)).toBe('SYNC_PAIR_PHOTOS_MAX_DELETE');
    const values = settingsFor({ SYNC_MAX_DELETE: '20', SYNC_PAIR_PHOTOS_MAX_DELETE: '10', SYNC_TRASH_DAYS: '7' }, prefix);
    expect(values.SYNC_MAX_DELETE).toBe(10);
    expect(values.SYNC_TRASH_DAYS).toBe(7);
  });

  it.each(SETTINGS.filter((s) => s.scope === 'process').map((s) => [s.env, s] as const))('%s given per pair is refused, naming it', (_env, setting) => {
    const own = variableFor(setting, 'SYNC_PAIR_PHOTOS_');
    expect(() => settingsFor({ [own]: 'anything' }, 'SYNC_PAIR_PHOTOS_')).toThrow(own);
  });

  it('an empty or blank variable counts as unset', () => {
    const values = settingsFor({ SYNC_MAX_DELETE: '', SYNC_COMPARE: ' ', LOG_LEVEL: '' });
    expect([values.SYNC_MAX_DELETE, values.SYNC_COMPARE, values.LOG_LEVEL]).toEqual([50, 'size,modtime', 'info']);
  });

  it('durations show in their largest whole unit', () => {
    expect([0, 1500, 30_000, 300_000, 5_400_000, 7_200_000, 86_400_000].map(showDuration)).toEqual(['0', '1500ms', '30s', '5m', '90m', '2h', '1d']);
  });
});

describe('--help and README show every row with its default', () => {
  const help = helpText();
  const lineOf = (env: string) => help.split('\n').find((l) => l.trimStart().startsWith(`${env} `));

  it.each(rows)('%s in --help', (env, setting) => {
    const line = lineOf(env);
    expect(line).toBeDefined();
    expect(line).toContain(`--${setting.flag}`);
    expect(line).toContain(`default: ${defaultText(setting)}`);
    expect(help).toContain(setting.help);
  });

  it('the defaults read as a user writes them', () => {
    const expected: Partial<Record<SettingName, string>> = {
      SYNC_PATH1: '/data',
      SYNC_MAX_DELETE: '50',
      SYNC_CHECK_FILENAME: 'RCLONE_TEST',
      SYNC_CONFLICT_RESOLVE: 'newer',
      SYNC_RCLONE_ARGS: "''",
      SYNC_STALL_TIMEOUT: '5m',
      SYNC_TRASH_DAYS: '30',
      SYNC_SCHEDULE: '*/30 * * * *',
      SYNC_RUN_ON_START: 'true',
      SYNC_FILTERS_FILE: 'not set',
      LOG_FORMAT: 'pretty on a terminal, else json',
    };
    for (const [env, shown] of Object.entries(expected)) expect(lineOf(env)).toContain(`default: ${shown}`);
  });

  it.each(rows)('%s: README\'s settings table shows its flag and default', async (_env, setting) => {
    const readme = await readFile(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    expect(readme).toContain(readmeRowStart(setting));
  });
});
