/**
 * The folder pairs of one process (issue 11), from the environment the way rclone reads remotes:
 *
 * - the unnamed pair, SYNC_PATH1/SYNC_PATH2, exists when SYNC_PATH2 is set (unchanged);
 * - a named pair NAME exists when `SYNC_PAIR_<NAME>_PATH2` is set; each per-pair setting `SYNC_<X>`
 *   can be given for it as `SYNC_PAIR_<NAME>_<X>`, and falls back to the global `SYNC_<X>`;
 * - names are letters, digits and `_`, shown in lower case;
 * - process-wide settings (SYNC_HTTP_PORT, LOG_*, TZ) are global only: per pair is exit 2;
 * - two pairs whose sides overlap (one inside the other, on the same remote) are exit 2.
 *
 * Pure: reads only the environment it is given. Each pair's state lives in its own folder of its
 * SYNC_STATE_DIR (state/pair.ts pairId), so pairs never share a lock.
 */
import { posix } from 'node:path';
import { culprit, loadConfig, SETTINGS, variableFor, type AnySetting, type Config } from './config.ts';
import { ConfigError, ExitCode } from './errors.ts';
import { redact } from './log.ts';
import { parseRclonePath, remoteOf } from './rclone/paths.ts';
import { pairId } from './state/pair.ts';

export const PAIR_PREFIX = 'SYNC_PAIR_';

export interface PairDefinition {
  /** The pair's name in lower case; undefined for the unnamed pair (SYNC_PATH1/SYNC_PATH2). */
  readonly name: string | undefined;
  /** Its folder in SYNC_STATE_DIR (pairId of its two paths). */
  readonly id: string;
  /** How --pair, /healthz/<pair>, the `pair` metric label and the logs name it: the name, else the id. */
  readonly key: string;
  /** How people read it (progress lines, messages): the name, else `path1 <-> path2` with credentials masked. */
  readonly label: string;
  /** Its variables' prefix, `SYNC_PAIR_PHOTOS_`; '' for the unnamed pair. */
  readonly prefix: string;
  readonly config: Config;
}

type Env = Readonly<Record<string, string | undefined>>;

const set = (value: string | undefined): value is string => value !== undefined && value.trim() !== '';

/** What follows a pair's prefix for each setting: `MAX_DELETE` for SYNC_MAX_DELETE, `LOG_LEVEL` for LOG_LEVEL. */
const SUFFIXES: ReadonlyMap<string, AnySetting> = new Map(SETTINGS.map((s) => [variableFor(s, 'X_').slice(2), s]));
/** Settings a flag gives for the unnamed pair only: a named pair's sides are its own. */
const SIDE_SETTINGS = new Set(['SYNC_PATH1', 'SYNC_PATH2', 'SYNC_TRASH_PATH1', 'SYNC_TRASH_PATH2']);

/**
 * The named pairs' names as written in the variables (`PHOTOS`), in order. `SYNC_PAIR_X_TRASH_PATH2`
 * also ends in `_PATH2`: it names pair `x_trash` only when there is no pair `x`.
 */
export function pairNamesIn(env: Env): string[] {
  const candidates = new Set<string>();
  for (const [key, value] of Object.entries(env)) {
    const match = /^SYNC_PAIR_(.+)_PATH2$/.exec(key);
    if (match && set(value)) candidates.add(match[1]!);
  }
  const names = [...candidates].filter((c) => !(c.endsWith('_TRASH') && candidates.has(c.slice(0, -'_TRASH'.length)))).sort();
  const seen = new Map<string, string>();
  for (const raw of names) {
    if (!/^[A-Za-z0-9_]+$/.test(raw) || /^_|_$/.test(raw)) {
      throw new ConfigError(`${PAIR_PREFIX}${raw}_PATH2: a pair's name is letters, digits and "_" (got "${raw}")`);
    }
    const other = seen.get(raw.toLowerCase());
    if (other) throw new ConfigError(`${PAIR_PREFIX}${other}_PATH2 and ${PAIR_PREFIX}${raw}_PATH2 name the same pair "${raw.toLowerCase()}" (names are not case-sensitive)`);
    seen.set(raw.toLowerCase(), raw);
  }
  return names;
}

/**
 * Refuses what a pair may not set: a process-wide setting (TZ too), a variable that is no setting,
 * and a pair variable of a pair that does not exist (its PATH2 is not set).
 */
function checkPairVariables(env: Env, rawNames: readonly string[]): void {
  // Longest first: SYNC_PAIR_A_B_PATH1 belongs to pair a_b, not to pair a.
  const prefixes = rawNames.map((raw) => `${PAIR_PREFIX}${raw}_`).sort((a, b) => b.length - a.length);
  for (const [key, value] of Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!key.startsWith(PAIR_PREFIX) || !set(value)) continue;
    const prefix = prefixes.find((p) => key.startsWith(p));
    if (!prefix) {
      throw new ConfigError(`${key} belongs to no pair: a pair NAME exists when ${PAIR_PREFIX}NAME_PATH2 is set`);
    }
    const suffix = key.slice(prefix.length);
    if (suffix === 'TZ') throw new ConfigError(`${key}: TZ is process-wide; set it once, not per pair`);
    const setting = SUFFIXES.get(suffix);
    if (!setting) throw new ConfigError(`${key} is not a setting: a pair takes ${prefix}<X> for each setting SYNC_<X> (rclonesync --help lists them)`);
    if (setting.scope === 'process') throw new ConfigError(`${key}: ${culprit(setting.env)} is process-wide; set it once, not per pair`);
  }
}

export interface LoadPairsOptions {
  /** `status`, `health`, `trash`: without any pair, the unnamed one with an empty path2 (they read the state folder). */
  readonly path2Optional?: boolean;
}

/**
 * Every pair of the environment (flags in `overrides` apply to every pair; --path1/--path2 and the
 * trash paths to the unnamed one). Without any named pair this is loadConfig's one pair, unchanged.
 * Throws ConfigError (exit 2) for every rule above.
 */
export function loadPairs(env: Env, overrides: Record<string, string> = {}, isTty = false, options: LoadPairsOptions = {}): PairDefinition[] {
  const all: Env = { ...env, ...overrides };
  const rawNames = pairNamesIn(all);
  checkPairVariables(all, rawNames);
  const unnamed = (config: Config): PairDefinition => {
    const id = pairId(config.engine.path1, config.engine.path2);
    return { name: undefined, id, key: id, label: `${redact(config.engine.path1)} <-> ${redact(config.engine.path2)}`, prefix: '', config };
  };
  if (rawNames.length === 0) return [unnamed(loadConfig(env as NodeJS.ProcessEnv, overrides, isTty, options))];

  const pairs: PairDefinition[] = [];
  if (set(all.SYNC_PATH2)) pairs.push(unnamed(loadConfig(env as NodeJS.ProcessEnv, overrides, isTty)));
  for (const raw of rawNames) {
    const prefix = `${PAIR_PREFIX}${raw}_`;
    // A flag overrides the pair's own variable too: `run --dry-run` dry-runs every pair.
    const pairOverrides: Record<string, string> = { ...overrides };
    for (const [env, value] of Object.entries(overrides)) {
      const setting = SETTINGS.find((s) => s.env === env);
      if (setting?.scope === 'pair' && !SIDE_SETTINGS.has(env)) pairOverrides[variableFor(setting, prefix)] = value;
    }
    const config = loadConfig(env as NodeJS.ProcessEnv, pairOverrides, isTty, { prefix });
    const name = raw.toLowerCase();
    pairs.push({ name, id: pairId(config.engine.path1, config.engine.path2), key: name, label: name, prefix, config });
  }
  checkOverlaps(pairs, all);
  return pairs;
}

/** How messages name a pair. */
export const describePair = (pair: PairDefinition): string => (pair.name ? `pair "${pair.name}"` : 'the unnamed pair (SYNC_PATH1/SYNC_PATH2)');

/** The variable that gave a pair's side: its own, or the global one it fell back to. */
function sideVariable(pair: PairDefinition, side: 'PATH1' | 'PATH2', env: Env): string {
  const own = `${pair.prefix}${side}`;
  return pair.prefix && set(env[own]) ? own : `SYNC_${side}`;
}

/** Two pairs must not sync the same files: no side of one may be inside (or be) a side of another. */
function checkOverlaps(pairs: readonly PairDefinition[], env: Env): void {
  const sides = pairs.flatMap((pair) =>
    (['PATH1', 'PATH2'] as const).map((side) => ({ pair, side, path: side === 'PATH1' ? pair.config.engine.path1 : pair.config.engine.path2 })),
  );
  for (let i = 0; i < sides.length; i++) {
    for (let j = i + 1; j < sides.length; j++) {
      const a = sides[i]!;
      const b = sides[j]!;
      if (a.pair === b.pair || !sidesOverlap(a.path, b.path)) continue;
      const what = (s: typeof a) => `${sideVariable(s.pair, s.side, env)} (${redact(s.path)})`;
      throw new ConfigError(
        `${describePair(a.pair)} and ${describePair(b.pair)} overlap: ${what(a)} and ${what(b)} are the same folder or one is inside the other; two pairs must not sync the same files`,
      );
    }
  }
}

/** One path is the other or inside it, on the same remote. */
export function sidesOverlap(a: string, b: string): boolean {
  if (remoteOf(a) !== remoteOf(b)) return false;
  const [x, y] = [folderOf(a), folderOf(b)];
  const inside = (inner: string, outer: string) => outer === '' || outer === '/' || inner === outer || inner.startsWith(`${outer}/`);
  return inside(x, y) || inside(y, x);
}

/** The path within its remote, normalized: a local folder absolute, a remote's path without surrounding slashes. */
function folderOf(text: string): string {
  const parsed = parseRclonePath(text);
  if (parsed.kind === 'local') return posix.resolve('/', parsed.path.replaceAll('\\', '/'));
  return posix.normalize(`/${parsed.path}`).replace(/^\/+|\/+$/g, '');
}

/** The pairs `--pair` chose (all when none given), in the configured order; an unknown name is exit 2 listing them. */
export function selectPairs(pairs: readonly PairDefinition[], names: readonly string[]): PairDefinition[] {
  if (names.length === 0) return [...pairs];
  for (const name of names) {
    if (!pairs.some((p) => p.key === name.toLowerCase())) {
      throw new ConfigError(`unknown pair "${name}" (--pair): the pairs are ${pairs.map((p) => p.key).join(', ') || 'none'}`);
    }
  }
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  return pairs.filter((p) => wanted.has(p.key));
}

/** Severity of each exit code, most severe first: a safety stop, a usage error, a failure, a held lock, success. */
const SEVERITY: readonly number[] = [ExitCode.safetyStop, ExitCode.usage, ExitCode.failed, ExitCode.locked, ExitCode.ok];

/** The exit code of several runs: the most severe of theirs (3 > 2 > 1 > 4 > 0); 0 for none. An unknown code counts as 1. */
export function mostSevere(codes: readonly number[]): number {
  let best: number = ExitCode.ok;
  const rank = (code: number) => {
    const index = SEVERITY.indexOf(code);
    return index === -1 ? SEVERITY.indexOf(ExitCode.failed) : index;
  };
  for (const code of codes) if (rank(code) < rank(best)) best = SEVERITY.includes(code) ? code : ExitCode.failed;
  return best;
}
