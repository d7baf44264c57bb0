/**
 * Named pairs from the environment (src/pairs.ts, issue 11): which pairs exist, how their settings
 * fall back to the global ones, names, what a pair may not set, overlapping pairs, --pair, and the
 * exit code of several runs.
 */
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { loadPairs, mostSevere, pairNamesIn, selectPairs, sidesOverlap } from '../../src/pairs.ts';
import { pairId } from '../../src/state/pair.ts';

const STATE = { SYNC_STATE_DIR: '/tmp/rclonesync-pairs-test-state' };
const load = (env: Record<string, string>, overrides: Record<string, string> = {}) => loadPairs({ ...STATE, ...env }, overrides);
const refusal = (env: Record<string, string>, overrides: Record<string, string> = {}): string => {
  try {
    load(env, overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(2);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('which pairs exist', () => {
  it('without named pairs: the unnamed pair, as before', () => {
    const [pair, ...rest] = load({ SYNC_PATH1: '/a', SYNC_PATH2: 'remote:b' });
    expect(rest).toEqual([]);
    expect(pair!.name).toBeUndefined();
    expect(pair!.id).toBe(pairId('/a', 'remote:b'));
    expect(pair!.key).toBe(pair!.id);
    expect(pair!.label).toBe('/a <-> remote:b');
    expect(pair!.config.engine.path2).toBe('remote:b');
  });

  it('without any pair: SYNC_PATH2 is required, as before', () => {
    expect(refusal({})).toMatch(/SYNC_PATH2 \(--path2\) is required/);
  });

  it('a named pair exists when SYNC_PAIR_<NAME>_PATH2 is set; the unnamed one only with SYNC_PATH2', () => {
    const pairs = load({ SYNC_PAIR_PHOTOS_PATH1: '/data/photos', SYNC_PAIR_PHOTOS_PATH2: 'gdrive:Photos' });
    expect(pairs.map((p) => p.name)).toEqual(['photos']);
    expect(pairs[0]!.config.engine.path1).toBe('/data/photos');
    expect(pairs[0]!.id).toBe(pairId('/data/photos', 'gdrive:Photos'));
    const both = load({ SYNC_PATH1: '/data/main', SYNC_PATH2: 'b2:main', SYNC_PAIR_PHOTOS_PATH1: '/data/photos', SYNC_PAIR_PHOTOS_PATH2: 'gdrive:Photos' });
    expect(both.map((p) => p.key)).toEqual([pairId('/data/main', 'b2:main'), 'photos']);
  });

  it('an empty PATH2 (compose writes VAR=) defines no pair', () => {
    expect(() => load({ SYNC_PAIR_PHOTOS_PATH2: '' })).toThrow(/SYNC_PATH2 \(--path2\) is required/);
  });

  it('names are shown in lower case, may hold digits and _, and are sorted', () => {
    const env = { SYNC_PAIR_Work_2_PATH1: '/w', SYNC_PAIR_Work_2_PATH2: 'r:w', SYNC_PAIR_A1_PATH1: '/a', SYNC_PAIR_A1_PATH2: 'r:a' };
    expect(load(env).map((p) => p.name)).toEqual(['a1', 'work_2']);
    expect(pairNamesIn(env)).toEqual(['A1', 'Work_2']);
  });

  it('refuses a name with other characters, and two spellings of one name', () => {
    expect(refusal({ 'SYNC_PAIR_MY-PHOTOS_PATH2': 'r:x' })).toMatch(/SYNC_PAIR_MY-PHOTOS_PATH2: a pair's name is letters, digits and "_"/);
    expect(refusal({ SYNC_PAIR_PHOTOS_PATH1: '/a', SYNC_PAIR_PHOTOS_PATH2: 'r:a', SYNC_PAIR_Photos_PATH1: '/b', SYNC_PAIR_Photos_PATH2: 'r:b' })).toMatch(
      /SYNC_PAIR_PHOTOS_PATH2 and SYNC_PAIR_Photos_PATH2 name the same pair "photos"/,
    );
  });

  it('SYNC_PAIR_X_TRASH_PATH2 is pair x\'s trash, not a pair x_trash', () => {
    const pairs = load({ SYNC_PAIR_X_PATH1: '/x', SYNC_PAIR_X_PATH2: 'r:x', SYNC_PAIR_X_TRASH_PATH2: 'r:trash-x' });
    expect(pairs.map((p) => p.name)).toEqual(['x']);
    expect(pairs[0]!.config.engine.trashPaths.path2).toBe('r:trash-x');
  });

  it('a pair whose name starts like another keeps its own variables', () => {
    const pairs = load({ SYNC_PAIR_A_PATH1: '/a', SYNC_PAIR_A_PATH2: 'r:a', SYNC_PAIR_A_B_PATH1: '/ab', SYNC_PAIR_A_B_PATH2: 'r:ab', SYNC_PAIR_A_B_MAX_DELETE: '7' });
    expect(pairs.map((p) => [p.name, p.config.engine.path1, p.config.engine.maxDeletePercent])).toEqual([
      ['a', '/a', 50],
      ['a_b', '/ab', 7],
    ]);
  });
});

describe('per-pair settings', () => {
  const two = {
    SYNC_PAIR_PHOTOS_PATH1: '/data/photos',
    SYNC_PAIR_PHOTOS_PATH2: 'gdrive:Photos',
    SYNC_PAIR_DOCS_PATH1: '/data/docs',
    SYNC_PAIR_DOCS_PATH2: 'dropbox:Docs',
  };

  it('a pair\'s own value wins; unset falls back to the global SYNC_<X>, then to the default', () => {
    const pairs = load({
      ...two,
      SYNC_SCHEDULE: '0 * * * *',
      SYNC_PAIR_PHOTOS_SCHEDULE: '*/10 * * * *',
      SYNC_PAIR_PHOTOS_MAX_DELETE: '20',
      SYNC_PAIR_DOCS_PING_URL: 'https://hc.example/docs',
      SYNC_WATCH_DELAY: '30s',
    });
    const [docs, photos] = pairs.map((p) => p.config);
    expect(photos!.appliance.schedule).toBe('*/10 * * * *');
    expect(docs!.appliance.schedule).toBe('0 * * * *');
    expect(photos!.engine.maxDeletePercent).toBe(20);
    expect(docs!.engine.maxDeletePercent).toBe(50);
    expect(docs!.appliance.pingUrl).toBe('https://hc.example/docs');
    expect(photos!.appliance.pingUrl).toBeUndefined();
    expect(photos!.appliance.watchDelayMs).toBe(30_000);
    expect(photos!.appliance.watch).toBe(true);
  });

  it('PATH1 falls back to the global SYNC_PATH1 too', () => {
    const [pair] = load({ SYNC_PATH1: '/data/shared', SYNC_PAIR_ONE_PATH2: 'r:one' });
    expect(pair!.config.engine.path1).toBe('/data/shared');
  });

  it('a bad per-pair value names the pair\'s variable', () => {
    expect(refusal({ ...two, SYNC_PAIR_PHOTOS_MAX_DELETE: '150' })).toMatch(/^SYNC_PAIR_PHOTOS_MAX_DELETE must be a percentage/);
    expect(refusal({ ...two, SYNC_PAIR_DOCS_SCHEDULE: 'bogus' })).toMatch(/^SYNC_PAIR_DOCS_SCHEDULE /);
    expect(refusal({ SYNC_PAIR_SAME_PATH1: '/x', SYNC_PAIR_SAME_PATH2: '/x' })).toMatch(/SYNC_PAIR_SAME_PATH1 and SYNC_PAIR_SAME_PATH2 are the same path/);
    expect(refusal({ SYNC_PAIR_T_PATH1: '/t', SYNC_PAIR_T_PATH2: 'r:t', SYNC_PAIR_T_TRASH_PATH1: 'other:trash' })).toMatch(/^SYNC_PAIR_T_TRASH_PATH1 must be on the same remote as SYNC_PAIR_T_PATH1/);
  });

  it('flags apply to every pair, over the pair\'s own variables; --path1/--path2 to the unnamed pair only', () => {
    const pairs = load({ ...two, SYNC_PAIR_PHOTOS_DRY_RUN: 'false' }, { SYNC_DRY_RUN: 'true', SYNC_PATH1: '/data/main', SYNC_PATH2: 'b2:main' });
    expect(pairs.map((p) => [p.key, p.config.engine.dryRun, p.config.engine.path1])).toEqual([
      [pairId('/data/main', 'b2:main'), true, '/data/main'],
      ['docs', true, '/data/docs'],
      ['photos', true, '/data/photos'],
    ]);
  });

  it.each([
    ['SYNC_PAIR_PHOTOS_HTTP_PORT', '8080', /SYNC_PAIR_PHOTOS_HTTP_PORT: SYNC_HTTP_PORT \(--http-port\) is process-wide/],
    ['SYNC_PAIR_PHOTOS_LOG_LEVEL', 'debug', /SYNC_PAIR_PHOTOS_LOG_LEVEL: LOG_LEVEL \(--log-level\) is process-wide/],
    ['SYNC_PAIR_PHOTOS_LOG_FORMAT', 'json', /SYNC_PAIR_PHOTOS_LOG_FORMAT: LOG_FORMAT \(--log-format\) is process-wide/],
    ['SYNC_PAIR_PHOTOS_TZ', 'Europe/Berlin', /SYNC_PAIR_PHOTOS_TZ: TZ is process-wide/],
  ])('refuses the process-wide %s per pair', (variable, value, message) => {
    expect(refusal({ ...two, [variable]: value })).toMatch(message);
  });

  it('refuses a variable that is no setting, and one of a pair without PATH2', () => {
    expect(refusal({ ...two, SYNC_PAIR_PHOTOS_SCHEDUL: '* * * * *' })).toMatch(/SYNC_PAIR_PHOTOS_SCHEDUL is not a setting/);
    expect(refusal({ ...two, SYNC_PAIR_MUSIC_PATH1: '/data/music' })).toMatch(/SYNC_PAIR_MUSIC_PATH1 belongs to no pair: a pair NAME exists when SYNC_PAIR_NAME_PATH2 is set/);
  });
});

describe('overlapping pairs', () => {
  it.each([
    ['one local folder inside another', '/data', '/data/photos'],
    ['the same local folder', '/data/photos', '/data/photos/'],
    ['a remote folder inside another', 'gdrive:Photos', 'gdrive:Photos/2024'],
    ['a remote root and a folder on it', 'gdrive:', 'gdrive:Photos'],
  ])('%s: exit 2 naming both pairs', (_what, a, b) => {
    const message = refusal({ SYNC_PAIR_A_PATH1: a, SYNC_PAIR_A_PATH2: 'x:a', SYNC_PAIR_B_PATH1: '/elsewhere', SYNC_PAIR_B_PATH2: b });
    expect(message).toMatch(/pair "a" and pair "b" overlap/);
    expect(message).toContain('SYNC_PAIR_A_PATH1');
    expect(message).toContain('SYNC_PAIR_B_PATH2');
  });

  it('names the unnamed pair and the global variable a pair fell back to', () => {
    const message = refusal({ SYNC_PATH1: '/data', SYNC_PATH2: 'r:main', SYNC_PAIR_PHOTOS_PATH2: 'r:photos' });
    expect(message).toMatch(/the unnamed pair \(SYNC_PATH1\/SYNC_PATH2\) and pair "photos" overlap: SYNC_PATH1 \(\/data\) and SYNC_PATH1 \(\/data\)/);
  });

  it('siblings, a shared name prefix and other remotes do not overlap', () => {
    expect(sidesOverlap('/data/photos', '/data/photos2')).toBe(false);
    expect(sidesOverlap('/data/a', '/data/b')).toBe(false);
    expect(sidesOverlap('gdrive:Photos', 'dropbox:Photos')).toBe(false);
    expect(sidesOverlap('/Photos', 'gdrive:Photos')).toBe(false);
    expect(sidesOverlap('gdrive:/Photos', 'gdrive:Photos/x')).toBe(true);
    expect(sidesOverlap('/data/./photos/../photos', '/data/photos/x')).toBe(true);
    expect(() => load({ SYNC_PAIR_A_PATH1: '/data/a', SYNC_PAIR_A_PATH2: 'r:a', SYNC_PAIR_B_PATH1: '/data/ab', SYNC_PAIR_B_PATH2: 'r:ab' })).not.toThrow();
  });
});

describe('--pair', () => {
  const pairs = load({ SYNC_PAIR_PHOTOS_PATH1: '/p', SYNC_PAIR_PHOTOS_PATH2: 'r:p', SYNC_PAIR_DOCS_PATH1: '/d', SYNC_PAIR_DOCS_PATH2: 'r:d' });

  it('none given: every pair; given: only those, in the configured order, any case', () => {
    expect(selectPairs(pairs, []).map((p) => p.key)).toEqual(['docs', 'photos']);
    expect(selectPairs(pairs, ['PHOTOS']).map((p) => p.key)).toEqual(['photos']);
    expect(selectPairs(pairs, ['photos', 'docs', 'photos']).map((p) => p.key)).toEqual(['docs', 'photos']);
  });

  it('is read from the command line, repeatable, in lower case', () => {
    expect(parseCommandLine(['run', '--pair', 'Photos', '--pair', 'docs']).pairs).toEqual(['photos', 'docs']);
    expect(parseCommandLine(['status']).pairs).toEqual([]);
  });

  it('an unknown name is exit 2 listing the pairs', () => {
    expect(() => selectPairs(pairs, ['music'])).toThrow(ConfigError);
    expect(() => selectPairs(pairs, ['music'])).toThrow('unknown pair "music" (--pair): the pairs are docs, photos');
  });
});

describe('mostSevere', () => {
  it.each([
    [[], 0],
    [[0, 0], 0],
    [[0, 4], 4],
    [[4, 1, 0], 1],
    [[1, 2, 4], 2],
    [[2, 3, 1], 3],
    [[3, 0], 3],
    [[0, 7], 1],
  ])('%j -> %i (3 > 2 > 1 > 4 > 0)', (codes, expected) => {
    expect(mostSevere(codes)).toBe(expected);
  });
});
