/**
 * Every setting is an environment variable with a flag that overrides it. SETTINGS is the single
 * source of each setting's parser, accepted choices, typed default and help: `loadConfig`,
 * `--help` and the README table (`readmeRowStart`) all come from it, so they cannot drift apart.
 */
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cron } from 'croner';
import type * as ShellQuote from 'shell-quote';
import { ConfigError } from './errors.ts';
import { remoteOf } from './rclone/paths.ts';
import { notifyTarget } from './appliance/notify-formats.ts';
import { COMPARE_MODES, CONFLICT_RESOLVES, LOCAL_LISTINGS, type CompareMode, type ConflictResolve, type LocalListingMode } from './model.ts';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What a parser may look at besides the value itself. */
export interface ParseContext {
  /** How messages name the setting: `SYNC_MAX_DELETE (--max-delete)`. */
  readonly name: string;
  /** Every variable, flags applied (the schedule reads TZ). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly isTty: boolean;
}

/** How one setting's text becomes its value, and back. */
export interface Parser<T> {
  /** How the flag is parsed: `--dry-run`/`--no-dry-run`, or `--max-delete VALUE`. */
  readonly kind: 'string' | 'boolean';
  /** The accepted values, for settings that take one of a list. */
  readonly choices?: readonly string[];
  /** Throws ConfigError naming `ctx.name`, the value given, and what is accepted. */
  readonly parse: (raw: string, ctx: ParseContext) => T;
  /** The value as a user writes it: `parse(show(v))` gives v back. */
  readonly show: (value: T) => string;
}

/** Where a setting's value lands in Config. */
export type SettingGroup = 'engine' | 'log' | 'appliance';
/**
 * `pair`: each folder pair may have its own (issue 11: `SYNC_PAIR_<NAME>_<X>`); `process`: one for
 * the whole process (the HTTP port, the logs), which a pair may not set.
 */
export type SettingScope = 'pair' | 'process';

export interface Setting<E extends string = string, T = unknown> extends Parser<T> {
  readonly env: E;
  readonly flag: string;
  readonly help: string;
  readonly group: SettingGroup;
  readonly scope: SettingScope;
  /** The value when the variable is unset or empty; a function when it depends on the environment. */
  readonly default: T | ((ctx: ParseContext) => T);
  /** How help and README show the default when it is computed or absent (markdown, `code` in backticks). */
  readonly shownDefault?: string;
}
// A table of settings of different value types: `show` takes each row's own type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySetting = Setting<string, any>;

const setting = <E extends string, T>(row: Setting<E, T>): Setting<E, T> => row;

// ---- Parsers, small and reusable -----------------------------------------------------------

/** shell-quote only when shell words are given: most runs set none, and loading it cost each ~4 ms. */
const shellQuote = (): typeof ShellQuote => createRequire(import.meta.url)('shell-quote') as typeof ShellQuote;

const fail = (ctx: ParseContext, what: string, raw: string): never => {
  throw new ConfigError(`${ctx.name} ${what} (got "${raw}")`);
};

/**
 * A value read by `read`, which throws a plain Error saying what the value should be; the message
 * becomes ours: `NAME: should be ... (got "x")`. (The wording is env-var's, which these replaced:
 * loading that package cost every start ~6 ms for two parsers.)
 */
const required =
  <T>(read: (raw: string) => T) =>
  (raw: string, ctx: ParseContext): T => {
    try {
      if (raw.trim().length === 0) throw new Error('is a required variable, but its value was empty');
      return read(raw);
    } catch (error) {
      throw new ConfigError(`${ctx.name}: ${(error as Error).message} (got "${raw}")`);
    }
  };

const strictBoolean = (raw: string): boolean => {
  const value = raw.toLowerCase();
  if (value !== 'false' && value !== 'true') throw new Error('should be either "true", "false", "TRUE", or "FALSE"');
  return value === 'true';
};

const portNumber = (raw: string): number => {
  const n = Number.parseInt(raw, 10);
  if (Number.isNaN(n) || n.toString(10) !== raw) throw new Error('should be a valid integer');
  if (n < 0) throw new Error('should be a positive integer');
  if (n > 65535) throw new Error('cannot assign a port number greater than 65535');
  return n;
};

export const parsers = {
  /** Any text, as given. */
  text: { kind: 'string', parse: (raw) => raw, show: (value) => value } satisfies Parser<string>,
  /** An rclone path or a file: surrounding blanks dropped. */
  path: { kind: 'string', parse: (raw) => raw.trim(), show: (value) => value } satisfies Parser<string>,
  boolean: { kind: 'boolean', parse: required(strictBoolean), show: String } satisfies Parser<boolean>,
  port: { kind: 'string', parse: required(portNumber), show: String } satisfies Parser<number>,
  /** One of `choices`, case and blanks ignored; `aliases` are accepted spellings of a choice. */
  oneOf<C extends string>(choices: readonly C[], aliases: Readonly<Record<string, C>> = {}): Parser<C> {
    const accepted = [...choices, ...Object.keys(aliases)];
    return {
      kind: 'string',
      choices,
      parse: (raw, ctx) => {
        const normalized = raw.trim().toLowerCase().replace(/\s+/g, '');
        if ((choices as readonly string[]).includes(normalized)) return normalized as C;
        return aliases[normalized] ?? fail(ctx, `must be one of ${accepted.join(', ')}`, raw);
      },
      show: (value) => value,
    };
  },
  percent: {
    kind: 'string',
    parse: (raw, ctx) => {
      const value = Number(raw.trim().replace(/%$/, ''));
      if (!/^\s*\d+(\.\d+)?%?\s*$/.test(raw) || !(value >= 0 && value <= 100)) fail(ctx, 'must be a percentage from 0 to 100', raw);
      return value;
    },
    show: String,
  } satisfies Parser<number>,
  days: {
    kind: 'string',
    parse: (raw, ctx) => (/^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : fail(ctx, 'must be a number of days, 0 or more (0 turns the trash off)', raw)),
    show: String,
  } satisfies Parser<number>,
  /** Milliseconds from `30s`, `5m`, `2h`, `1d` (a bare number is seconds) that `accepts` takes. */
  duration(accepts: (ms: number) => boolean, expected: string): Parser<number> {
    return {
      kind: 'string',
      parse: (raw, ctx) => {
        const ms = parseDuration(raw);
        return ms !== undefined && accepts(ms) ? ms : fail(ctx, `must be ${expected}`, raw);
      },
      show: showDuration,
    };
  },
  /** A plain file name: no folder, not blank. */
  fileName: {
    kind: 'string',
    parse: (raw, ctx) => (raw.includes('/') || raw.trim() === '' ? fail(ctx, 'must be a plain file name without "/"', raw) : raw),
    show: (value) => value,
  } satisfies Parser<string>,
  /** rclone arguments, split like a POSIX shell splits words. */
  shellWords: { kind: 'string', parse: (raw, ctx) => splitShellWords(raw, ctx.name), show: (words) => shellQuote().quote([...words]) } satisfies Parser<readonly string[]>,
  /** A cron schedule of 5 or 6 fields (or `@hourly`...) that fires, in the TZ time zone. */
  schedule: { kind: 'string', parse: parseSchedule, show: (value) => value } satisfies Parser<string>,
  httpUrl: {
    kind: 'string',
    parse: (raw, ctx) => {
      let url: URL | undefined;
      try {
        url = new URL(raw);
      } catch {
        // refused below
      }
      if (url?.protocol !== 'http:' && url?.protocol !== 'https:') fail(ctx, 'must be an http(s) URL', raw);
      return raw.replace(/\/+$/, '');
    },
    show: (value) => value,
  } satisfies Parser<string>,
  /** A webhook or a notification service's URL (appliance/notify-formats.ts). */
  notifyUrl: {
    kind: 'string',
    parse: (raw, ctx) => {
      try {
        notifyTarget(raw);
      } catch (error) {
        fail(ctx, (error as Error).message, raw);
      }
      return raw.replace(/\/+$/, '');
    },
    show: (value) => value,
  } satisfies Parser<string>,
  /** The same parser, for a setting that may be left unset (its default then is undefined). */
  optional<T>(parser: Parser<T>): Parser<T | undefined> {
    return { ...parser, show: (value) => (value === undefined ? '' : parser.show(value)) };
  },
};
const { text, path, boolean, port, oneOf, percent, days, duration, fileName, shellWords, schedule, httpUrl, notifyUrl, optional } = parsers;

// ---- The settings ------------------------------------------------------------------------------

const ROWS = [
  setting({ env: 'SYNC_PATH1', flag: 'path1', group: 'engine', scope: 'pair', ...path, default: '/data', help: 'First side: any rclone path (local folder, remote:path, :backend,opt=...:path).' }),
  setting({ env: 'SYNC_PATH2', flag: 'path2', group: 'engine', scope: 'pair', ...optional(path), default: undefined, shownDefault: '— (required)', help: 'Second side: any rclone path.' }),
  setting({ env: 'SYNC_STATE_DIR', flag: 'state-dir', group: 'engine', scope: 'pair', ...path, default: (ctx) => defaultStateDir(ctx.env), shownDefault: '`/state` in the image; else `$XDG_STATE_HOME/rclonesync`, else `~/.local/state/rclonesync`', help: 'Where snapshots, the lock and run history live (one subfolder per pair).' }),
  setting({ env: 'SYNC_RESYNC', flag: 'resync', group: 'engine', scope: 'pair', ...boolean, default: false, help: 'Merge both sides without deleting anything (automatic on the first run of a pair).' }),
  setting({ env: 'SYNC_DRY_RUN', flag: 'dry-run', group: 'engine', scope: 'pair', ...boolean, default: false, help: 'Log every action a run would take; change nothing.' }),
  setting({ env: 'SYNC_MAX_DELETE', flag: 'max-delete', group: 'engine', scope: 'pair', ...percent, default: 50, help: "Largest share (percent, 0-100) of a side's files one run may delete." }),
  setting({ env: 'SYNC_FORCE', flag: 'force', group: 'engine', scope: 'pair', ...boolean, default: false, help: 'Override the max-delete gate for this run.' }),
  setting({ env: 'SYNC_CHECK_ACCESS', flag: 'check-access', group: 'engine', scope: 'pair', ...boolean, default: false, help: 'Require check files at the same paths on both sides before anything changes.' }),
  setting({ env: 'SYNC_CHECK_FILENAME', flag: 'check-filename', group: 'engine', scope: 'pair', ...fileName, default: 'RCLONE_TEST', help: 'Name of the access-check files.' }),
  setting({ env: 'SYNC_FILTERS_FILE', flag: 'filters-file', group: 'engine', scope: 'pair', ...optional(text), default: undefined, help: 'rclone filter rules (--filter-from syntax) applied to both sides. Changing it needs a resync.' }),
  setting({ env: 'SYNC_COMPARE', flag: 'compare', group: 'engine', scope: 'pair', ...oneOf<CompareMode>(COMPARE_MODES, { 'size,modtime,checksum': 'checksum' }), default: 'size,modtime', help: 'What makes a file changed: size,modtime or checksum (adds a hash both sides support).' }),
  setting({ env: 'SYNC_CONFLICT_RESOLVE', flag: 'conflict-resolve', group: 'engine', scope: 'pair', ...oneOf<ConflictResolve>(CONFLICT_RESOLVES), default: 'newer', help: 'Which version of a file changed on both sides keeps its name: newer, older, larger, smaller, path1, path2; the other is kept beside it as name.conflict-<side>-<stamp>.ext on both sides (a tie keeps both under conflict names). none: both get conflict names.' }),
  setting({ env: 'SYNC_RCLONE_ARGS', flag: 'rclone-args', group: 'engine', scope: 'pair', ...shellWords, default: [], help: 'Extra rclone arguments for transfers, split like a shell would (e.g. "--transfers 8 --bwlimit 5M").' }),
  // rclone reports progress once a second: a shorter wait would stop transfers that are moving.
  setting({ env: 'SYNC_STALL_TIMEOUT', flag: 'stall-timeout', group: 'engine', scope: 'pair', ...duration((ms) => ms === 0 || ms >= 5000, 'a duration of at least 5s such as 30s, 5m or 1h, or 0 to never stop a stalled rclone'), default: 5 * 60_000, help: 'Stop rclone and fail the run when no data moves (and a listing prints nothing) for this long: 30s, 5m, 1h; 0 = never.' }),
  setting({ env: 'SYNC_RCLONE_BINARY', flag: 'rclone-binary', group: 'engine', scope: 'pair', ...text, default: 'rclone', help: 'The rclone executable to run.' }),
  setting({ env: 'SYNC_TRASH_DAYS', flag: 'trash-days', group: 'engine', scope: 'pair', ...days, default: 30, help: "Days a removed or overwritten file stays in its side's trash (<root>/.rclonesync-trash/<run stamp>/); 0 makes removals final." }),
  setting({ env: 'SYNC_TRASH_PATH1', flag: 'trash-path1', group: 'engine', scope: 'pair', ...optional(path), default: undefined, shownDefault: '`<path1>/.rclonesync-trash`', help: "path1's trash elsewhere on the same remote." }),
  setting({ env: 'SYNC_TRASH_PATH2', flag: 'trash-path2', group: 'engine', scope: 'pair', ...optional(path), default: undefined, shownDefault: '`<path2>/.rclonesync-trash`', help: "path2's trash elsewhere on the same remote." }),
  setting({ env: 'SYNC_TRACK_RENAMES', flag: 'track-renames', group: 'engine', scope: 'pair', ...boolean, default: true, help: 'Carry a file or folder renamed or moved on one side over as a server-side move on the other (confirmed by content), not a copy plus a deletion.' }),
  setting({ env: 'SYNC_EMPTY_DIRS', flag: 'empty-dirs', group: 'engine', scope: 'pair', ...boolean, default: true, help: 'Sync folders too: a new folder (empty or not) is made on the other side, a removed one is removed there once empty.' }),
  setting({ env: 'SYNC_LOCAL_LISTING', flag: 'local-listing', group: 'engine', scope: 'pair', ...oneOf<LocalListingMode>(LOCAL_LISTINGS), default: 'here', help: "How a local side is listed: here (by rclonesync, in the very lines `rclone lsjson` prints, about 60% of its CPU; rclone lists whenever a filter, an option or a name needs it) or rclone (always `rclone lsjson`)." }),
  setting({ env: 'LOG_LEVEL', flag: 'log-level', group: 'log', scope: 'process', ...oneOf(LOG_LEVELS), default: 'info', help: 'debug, info, warn or error.' }),
  setting({ env: 'LOG_FORMAT', flag: 'log-format', group: 'log', scope: 'process', ...oneOf(LOG_FORMATS), default: (ctx) => (ctx.isTty ? 'pretty' : 'json'), shownDefault: 'pretty on a terminal, else `json`', help: 'json or pretty.' }),
  setting({ env: 'SYNC_SCHEDULE', flag: 'schedule', group: 'appliance', scope: 'pair', ...schedule, default: '*/30 * * * *', help: 'Cron schedule of the daemon (5 or 6 fields), in the TZ time zone.' }),
  setting({ env: 'SYNC_RUN_ON_START', flag: 'run-on-start', group: 'appliance', scope: 'pair', ...boolean, default: true, help: 'The daemon runs once at start, before the first scheduled time.' }),
  setting({ env: 'SYNC_WATCH', flag: 'watch', group: 'appliance', scope: 'pair', ...boolean, default: true, help: "The daemon watches the pair's local folders and starts a run SYNC_WATCH_DELAY after the last change (the schedule goes on too)." }),
  setting({ env: 'SYNC_WATCH_DELAY', flag: 'watch-delay', group: 'appliance', scope: 'pair', ...duration((ms) => ms >= 100, 'a duration of at least 100ms such as 10s or 1m'), default: 10_000, help: 'Watch mode: how long changes must be quiet before their run starts (10s, 1m).' }),
  setting({ env: 'SYNC_HEALTH_MAX_AGE', flag: 'health-max-age', group: 'appliance', scope: 'pair', ...optional(duration((ms) => ms > 0, 'a duration such as 3600, 90m, 2h or 1d')), default: undefined, shownDefault: 'twice the schedule interval', help: 'How old the last success may be for `health` to pass (e.g. 90m, 2h).' }),
  setting({ env: 'SYNC_HTTP_PORT', flag: 'http-port', group: 'appliance', scope: 'process', ...optional(port), default: undefined, shownDefault: 'off', help: 'Serve /healthz, /status and /metrics on this port.' }),
  setting({ env: 'SYNC_PING_URL', flag: 'ping-url', group: 'appliance', scope: 'pair', ...optional(httpUrl), default: undefined, help: 'healthchecks.io-style URL: <url>/start, <url> on success, <url>/fail on failure.' }),
  setting({ env: 'SYNC_NOTIFY_URL', flag: 'notify-url', group: 'appliance', scope: 'pair', ...optional(notifyUrl), default: undefined, help: 'On failure, safety stop and conflicts: a JSON webhook, or a message to ntfy (ntfy://host/topic, https://ntfy.sh/topic), Gotify (gotify://host/?token=...), Discord or Slack webhook URLs.' }),
] as const;

export const SETTINGS: readonly AnySetting[] = ROWS;
export type SettingName = (typeof ROWS)[number]['env'];
/** Each setting's value, by its variable's name. */
export type SettingValues = { readonly [S in (typeof ROWS)[number] as S['env']]: S extends Setting<string, infer T> ? T : never };

const settingByEnv = new Map(SETTINGS.map((s) => [s.env, s]));
/** How messages name a setting: `SYNC_PATH2 (--path2)`. */
export const culprit = (env: string): string => {
  const setting = settingByEnv.get(env);
  return setting ? `${env} (--${setting.flag})` : env;
};

/**
 * The variable that sets `setting` with `prefix`: the setting's own without one; with
 * `SYNC_PAIR_PHOTOS_`, `SYNC_PAIR_PHOTOS_MAX_DELETE` for SYNC_MAX_DELETE.
 */
export const variableFor = (setting: AnySetting, prefix = ''): string => (prefix ? prefix + setting.env.replace(/^SYNC_/, '') : setting.env);

/**
 * Every setting's value from `env` (flags already applied). With a prefix, per-pair settings are
 * read from their prefixed variables, falling back to the plain ones; a prefixed process-wide
 * setting is refused. An empty (or blank) variable counts as unset: compose files write VAR= for "unset".
 */
export function settingsFor(env: Readonly<Record<string, string | undefined>>, prefix = '', isTty = false): SettingValues {
  const values: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const own = variableFor(setting, prefix);
    if (prefix && setting.scope === 'process' && nonEmpty(env[own]) !== undefined) {
      throw new ConfigError(`${own}: ${setting.env} is process-wide; set it once, not per pair`);
    }
    const variable = prefix && setting.scope === 'pair' && nonEmpty(env[own]) !== undefined ? own : setting.env;
    const ctx: ParseContext = { name: variable === setting.env ? culprit(variable) : variable, env, isTty };
    const raw = nonEmpty(env[variable]);
    values[setting.env] = raw !== undefined ? setting.parse(raw, ctx) : defaultOf(setting, ctx);
  }
  return values as SettingValues;
}

const nonEmpty = (value: string | undefined): string | undefined => (value?.trim() === '' ? undefined : value);

/** A setting's default value in this environment. */
export function defaultOf<T>(setting: Setting<string, T>, ctx: ParseContext): T {
  return typeof setting.default === 'function' ? (setting.default as (ctx: ParseContext) => T)(ctx) : setting.default;
}

/** The default as `--help` shows it: `50`, `not set`, `''`. */
export function defaultText(setting: AnySetting): string {
  if (setting.shownDefault !== undefined) return setting.shownDefault.replaceAll('`', '');
  if (setting.default === undefined) return 'not set';
  const shown = setting.show(setting.default);
  return shown === '' ? "''" : shown;
}

/**
 * The start of the setting's row in README's settings table: variable, flag and default,
 * `| \`SYNC_MAX_DELETE\` | \`--max-delete\` | \`50\` |`; the meaning that follows is README's own.
 */
export function readmeRowStart(setting: AnySetting): string {
  const value = setting.shownDefault ?? (setting.default === undefined ? '' : setting.show(setting.default));
  const shown = setting.shownDefault ?? (value === '' ? '—' : `\`${value}\``);
  return `| \`${setting.env}\` | \`--${setting.flag}\` | ${shown} |`;
}

/** Outside the image (which sets SYNC_STATE_DIR=/state): the XDG state directory. */
export function defaultStateDir(env: Readonly<Record<string, string | undefined>>): string {
  const xdg = env.XDG_STATE_HOME?.trim();
  return join(xdg && isAbsolute(xdg) ? xdg : join(env.HOME?.trim() || homedir(), '.local', 'state'), 'rclonesync');
}

export interface EngineConfig {
  readonly path1: string;
  readonly path2: string;
  readonly stateDir: string;
  readonly resync: boolean;
  readonly dryRun: boolean;
  readonly maxDeletePercent: number;
  readonly force: boolean;
  readonly checkAccess: boolean;
  readonly checkFilename: string;
  readonly filtersFile: string | undefined;
  readonly compare: CompareMode;
  readonly conflictResolve: ConflictResolve;
  readonly rcloneArgs: readonly string[];
  readonly rcloneBinary: string;
  /** 0: removals are final (the run's trash folder is emptied when it ends). */
  readonly trashDays: number;
  /** Each side's trash root; undefined: `<root>/.rclonesync-trash`. */
  readonly trashPaths: { readonly path1: string | undefined; readonly path2: string | undefined };
  /** SYNC_STALL_TIMEOUT in milliseconds; 0: no stall watchdog. */
  readonly stallTimeoutMs: number;
  /** SYNC_TRACK_RENAMES: renames and moves are carried over as moves. */
  readonly trackRenames: boolean;
  /** SYNC_EMPTY_DIRS: folders are synced, empty ones included. */
  readonly emptyDirs: boolean;
  /** SYNC_LOCAL_LISTING: who lists a plain local side. */
  readonly localListing: LocalListingMode;
}

export interface LogConfig {
  readonly level: LogLevel;
  readonly format: LogFormat;
}

export interface ApplianceConfig {
  readonly schedule: string;
  readonly runOnStart: boolean;
  /** undefined: twice the schedule's interval. */
  readonly healthMaxAgeMs: number | undefined;
  readonly httpPort: number | undefined;
  /** Watch mode (the daemon only): local sides are watched, a change starts a run after watchDelayMs. */
  readonly watch: boolean;
  readonly watchDelayMs: number;
  readonly pingUrl: string | undefined;
  readonly notifyUrl: string | undefined;
}

export interface Config {
  readonly engine: EngineConfig;
  readonly log: LogConfig;
  readonly appliance: ApplianceConfig;
}

export interface ParsedCommandLine {
  readonly command: string | undefined;
  readonly positionals: readonly string[];
  /** Settings given as flags, keyed by their environment variable name. */
  readonly overrides: Record<string, string>;
  readonly json: boolean;
  readonly help: boolean;
  readonly version: boolean;
  /** `trash` only: which side, and which run's version. */
  readonly side: string | undefined;
  readonly from: string | undefined;
  /** `run` only: --progress / --no-progress (undefined: on a terminal with pretty logs). */
  readonly progress: boolean | undefined;
  /** --pair NAME (repeatable): only these pairs; empty: every pair. */
  readonly pairs: readonly string[];
}

/** Parses argv; flags for settings become overrides of the matching environment variables. */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    help: { type: 'boolean' },
    version: { type: 'boolean' },
    json: { type: 'boolean' },
    side: { type: 'string' },
    from: { type: 'string' },
    progress: { type: 'boolean' },
    pair: { type: 'string', multiple: true },
  };
  for (const setting of SETTINGS) options[setting.flag] = { type: setting.kind };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, allowNegative: true, strict: true });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. Run \`rclonesync --help\` for the settings.`);
  }
  const overrides: Record<string, string> = {};
  for (const setting of SETTINGS) {
    const value = parsed.values[setting.flag];
    if (value !== undefined) overrides[setting.env] = String(value);
  }
  const [command, ...positionals] = parsed.positionals;
  return {
    command,
    positionals,
    overrides,
    json: parsed.values.json === true,
    help: parsed.values.help === true,
    version: parsed.values.version === true,
    side: parsed.values.side as string | undefined,
    from: parsed.values.from as string | undefined,
    progress: parsed.values.progress as boolean | undefined,
    pairs: ((parsed.values.pair as string[] | undefined) ?? []).map((name) => name.trim().toLowerCase()),
  };
}

/**
 * Builds the configuration from the environment with flag overrides. Throws ConfigError naming the
 * variable and its flag, the value given, and what is accepted.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv,
  overrides: Record<string, string> = {},
  isTty = false,
  options: { path2Optional?: boolean; prefix?: string } = {},
): Config {
  const prefix = options.prefix ?? '';
  const v = settingsFor({ ...env, ...overrides }, prefix, isTty);
  // How messages name a setting: the pair's own variable when it set it (SYNC_PAIR_PHOTOS_PATH2).
  const named = (name: SettingName): string => {
    const own = variableFor(settingByEnv.get(name)!, prefix);
    return prefix && nonEmpty({ ...env, ...overrides }[own]) !== undefined ? own : culprit(name);
  };
  const path1 = v.SYNC_PATH1;
  if (v.SYNC_PATH2 === undefined && !options.path2Optional) {
    throw new ConfigError(
      `${prefix ? variableFor(settingByEnv.get('SYNC_PATH2')!, prefix) : culprit('SYNC_PATH2')} is required: the rclone path to keep in two-way sync with SYNC_PATH1 (${path1}), e.g. "gdrive:Backup" or "/mnt/other"`,
    );
  }
  // '' only for `status` and `health`, which then read the state folder's one pair.
  const path2 = v.SYNC_PATH2 ?? '';
  if (path1 === path2) throw new ConfigError(`${named('SYNC_PATH1').replace(/ \(--.*\)$/, '')} and ${named('SYNC_PATH2').replace(/ \(--.*\)$/, '')} are the same path ("${path1}"): nothing to sync`);

  return {
    engine: {
      path1,
      path2,
      stateDir: v.SYNC_STATE_DIR,
      resync: v.SYNC_RESYNC,
      dryRun: v.SYNC_DRY_RUN,
      maxDeletePercent: v.SYNC_MAX_DELETE,
      force: v.SYNC_FORCE,
      checkAccess: v.SYNC_CHECK_ACCESS,
      checkFilename: v.SYNC_CHECK_FILENAME,
      filtersFile: v.SYNC_FILTERS_FILE,
      compare: v.SYNC_COMPARE,
      conflictResolve: v.SYNC_CONFLICT_RESOLVE,
      rcloneArgs: v.SYNC_RCLONE_ARGS,
      rcloneBinary: v.SYNC_RCLONE_BINARY,
      trashDays: v.SYNC_TRASH_DAYS,
      trashPaths: {
        path1: checkTrashPath(named('SYNC_TRASH_PATH1'), v.SYNC_TRASH_PATH1, path1, named('SYNC_PATH1').replace(/ \(--.*\)$/, '')),
        path2: checkTrashPath(named('SYNC_TRASH_PATH2'), v.SYNC_TRASH_PATH2, path2, named('SYNC_PATH2').replace(/ \(--.*\)$/, '')),
      },
      stallTimeoutMs: v.SYNC_STALL_TIMEOUT,
      trackRenames: v.SYNC_TRACK_RENAMES,
      emptyDirs: v.SYNC_EMPTY_DIRS,
      localListing: v.SYNC_LOCAL_LISTING,
    },
    log: { level: v.LOG_LEVEL, format: v.LOG_FORMAT },
    appliance: {
      schedule: v.SYNC_SCHEDULE,
      runOnStart: v.SYNC_RUN_ON_START,
      healthMaxAgeMs: v.SYNC_HEALTH_MAX_AGE,
      httpPort: v.SYNC_HTTP_PORT,
      watch: v.SYNC_WATCH,
      watchDelayMs: v.SYNC_WATCH_DELAY,
      pingUrl: v.SYNC_PING_URL,
      notifyUrl: v.SYNC_NOTIFY_URL,
    },
  };
}

/** A side's trash must be on its side's remote (trashing is a server-side move), and not the side itself. */
function checkTrashPath(name: string, value: string | undefined, root: string, rootName: string): string | undefined {
  if (value === undefined) return undefined;
  if (remoteOf(value) !== remoteOf(root)) {
    throw new ConfigError(
      `${name} must be on the same remote as ${rootName} (${remoteOf(root) === 'local' ? 'the local disk' : remoteOf(root)}), so that trashing is a server-side move (got "${value}")`,
    );
  }
  if (value.replace(/\/+$/, '') === root.replace(/\/+$/, '')) throw new ConfigError(`${name} must not be ${rootName} itself (got "${value}")`);
  return value;
}

function parseSchedule(pattern: string, ctx: ParseContext): string {
  const fields = pattern.trim().split(/\s+/).length;
  // croner also takes a 7th field (years), which a schedule that runs for ever has no use for.
  if (!pattern.trim().startsWith('@') && fields !== 5 && fields !== 6) {
    throw new ConfigError(
      `${ctx.name} has ${fields} fields (got "${pattern}"): a cron schedule has 5 (minute hour day-of-month month day-of-week) or 6 (seconds first), e.g. "*/30 * * * *"`,
    );
  }
  let next: Date | null;
  try {
    const cron = new Cron(pattern, { paused: true, timezone: ctx.env.TZ });
    next = cron.nextRun();
    cron.stop();
  } catch (error) {
    throw new ConfigError(`${ctx.name} is not a valid cron schedule (got "${pattern}"): ${(error as Error).message}`);
  }
  if (!next) throw new ConfigError(`${ctx.name} never fires (got "${pattern}"): no date matches it (February 30th, say)`);
  return pattern;
}

/** Splits like a POSIX shell (quotes, escapes) but refuses what a shell would do besides splitting. */
export function splitShellWords(text: string, name = culprit('SYNC_RCLONE_ARGS')): string[] {
  const unbalanced = unbalancedQuote(text);
  if (unbalanced) {
    throw new ConfigError(`${name} has ${unbalanced}; quote words the way a shell would, e.g. --exclude "My Files/**" (got "${text}")`);
  }
  const words = shellQuote().parse(text, (variable) => `$${variable}`);
  return words.map((word) => {
    if (typeof word === 'string') return word;
    const what = 'op' in word ? `"${word.op}"` : 'comment' in word ? 'a comment' : 'a pattern';
    throw new ConfigError(`${name} contains ${what}; give plain rclone arguments such as "--transfers 8 --bwlimit 5M" (got "${text}")`);
  });
}

/** shell-quote silently accepts an unclosed quote or a trailing backslash; a shell would not. */
function unbalancedQuote(text: string): string | undefined {
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
    } else if (c === '\\') {
      if (i === text.length - 1) return 'a trailing backslash';
      i++;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    }
  }
  return quote ? `an unclosed ${quote === '"' ? 'double' : 'single'} quote` : undefined;
}

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = (match[2] ?? 's').toLowerCase();
  const factor = DURATION_UNITS[unit as keyof typeof DURATION_UNITS];
  return Number(match[1]) * factor;
}

/** Milliseconds in the largest unit that divides them: 300000 -> `5m`; 0 -> `0`. */
export function showDuration(ms: number): string {
  if (ms === 0) return '0';
  const [unit, factor] = Object.entries(DURATION_UNITS).findLast(([, f]) => ms % f === 0) ?? ['ms', 1];
  return `${ms / factor}${unit}`;
}

export function helpText(): string {
  const lines = [
    'rclonesync - safe two-way sync of two rclone paths',
    '',
    'Usage: rclonesync <command> [flags]',
    '',
    'Commands:',
    '  run       one sync cycle of every pair, then exit with the most severe code (exit codes below)',
    '            --progress / --no-progress: the live progress line (default: on a terminal)',
    '  daemon    run each pair on its SYNC_SCHEDULE (and, with SYNC_WATCH, on local changes) until stopped',
    '  status    recent runs of each pair (--json for machines)',
    '  trash list [--json] [--side path1|path2]',
    '            what the sync moved to each side\'s trash, newest first',
    '  trash restore PATH [--side path1|path2] [--from STAMP]',
    '            move the newest (or that run\'s) trashed version back (beside PATH if taken)',
    '  health    exit 0 if the last run of every pair succeeded recently, 1 otherwise (naming the pairs)',
    '',
    'run, daemon, status, health and trash take --pair NAME (repeatable): only those pairs.',
    '',
    'Pairs: SYNC_PATH1/SYNC_PATH2 is the unnamed pair; a pair NAME exists when SYNC_PAIR_<NAME>_PATH2 is set,',
    'and takes any setting SYNC_<X> below as SYNC_PAIR_<NAME>_<X> (unset: the global SYNC_<X>).',
    'LOG_LEVEL, LOG_FORMAT, SYNC_HTTP_PORT and TZ are for the whole process only.',
    '',
    'Settings (environment variable, flag; flags override the environment):',
  ];
  for (const s of SETTINGS) {
    lines.push(`  ${s.env.padEnd(22)} --${s.flag.padEnd(17)} default: ${defaultText(s)}`);
    lines.push(`      ${s.help}`);
  }
  lines.push(
    '',
    'Every RCLONE_* variable reaches rclone unchanged (RCLONE_CONFIG, RCLONE_CONFIG_<NAME>_TYPE=..., ...).',
    '',
    'Exit codes: 0 success; 1 failed, a later run may succeed; 2 configuration or usage error;',
    '            3 safety stop, needs a person; 4 another run holds the lock for this pair.',
  );
  return lines.join('\n');
}
