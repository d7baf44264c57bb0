/**
 * Every setting is an environment variable with a flag that overrides it. The table below is the
 * single source for parsing, validation messages and `--help`, so they cannot drift apart.
 */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import envVar from 'env-var';
import { Cron } from 'croner';
import { parse as shellParse } from 'shell-quote';
import { ConfigError } from './errors.ts';
import { remoteOf } from './rclone/paths.ts';
import { notifyTarget } from './appliance/notify-formats.ts';
import { CONFLICT_RESOLVES, type CompareMode, type ConflictResolve } from './model.ts';

type Kind = 'string' | 'boolean';

interface Setting {
  readonly env: string;
  readonly flag: string;
  readonly kind: Kind;
  readonly default: string | undefined;
  readonly help: string;
  /** Only meaningful to the daemon / appliance commands. */
  readonly appliance?: boolean;
}

export const SETTINGS: readonly Setting[] = [
  { env: 'SYNC_PATH1', flag: 'path1', kind: 'string', default: '/data', help: 'First side: any rclone path (local folder, remote:path, :backend,opt=...:path).' },
  { env: 'SYNC_PATH2', flag: 'path2', kind: 'string', default: undefined, help: 'Second side (required): any rclone path.' },
  { env: 'SYNC_STATE_DIR', flag: 'state-dir', kind: 'string', default: defaultStateDir(process.env), help: 'Where snapshots, the lock and run history live (one subfolder per pair). The image sets /state; elsewhere $XDG_STATE_HOME/rclonesync, else ~/.local/state/rclonesync.' },
  { env: 'SYNC_RESYNC', flag: 'resync', kind: 'boolean', default: 'false', help: 'Merge both sides without deleting anything (automatic on the first run of a pair).' },
  { env: 'SYNC_DRY_RUN', flag: 'dry-run', kind: 'boolean', default: 'false', help: 'Log every action a run would take; change nothing.' },
  { env: 'SYNC_MAX_DELETE', flag: 'max-delete', kind: 'string', default: '50', help: "Largest share (percent, 0-100) of a side's files one run may delete." },
  { env: 'SYNC_FORCE', flag: 'force', kind: 'boolean', default: 'false', help: 'Override the max-delete gate for this run.' },
  { env: 'SYNC_CHECK_ACCESS', flag: 'check-access', kind: 'boolean', default: 'false', help: 'Require check files at the same paths on both sides before anything changes.' },
  { env: 'SYNC_CHECK_FILENAME', flag: 'check-filename', kind: 'string', default: 'RCLONE_TEST', help: 'Name of the access-check files.' },
  { env: 'SYNC_FILTERS_FILE', flag: 'filters-file', kind: 'string', default: undefined, help: 'rclone filter rules (--filter-from syntax) applied to both sides. Changing it needs a resync.' },
  { env: 'SYNC_COMPARE', flag: 'compare', kind: 'string', default: 'size,modtime', help: 'What makes a file changed: size,modtime or checksum (adds a hash both sides support).' },
  { env: 'SYNC_CONFLICT_RESOLVE', flag: 'conflict-resolve', kind: 'string', default: 'newer', help: 'Which version of a file changed on both sides keeps its name: newer, older, larger, smaller, path1, path2; the other is kept beside it as name.conflict-<side>-<stamp>.ext on both sides (a tie keeps both under conflict names). none: both get conflict names.' },
  { env: 'SYNC_RCLONE_ARGS', flag: 'rclone-args', kind: 'string', default: '', help: 'Extra rclone arguments for transfers, split like a shell would (e.g. "--transfers 8 --bwlimit 5M").' },
  { env: 'SYNC_STALL_TIMEOUT', flag: 'stall-timeout', kind: 'string', default: '5m', help: 'Stop rclone and fail the run when no data moves (and a listing prints nothing) for this long: 30s, 5m, 1h; 0 = never.' },
  { env: 'SYNC_RCLONE_BINARY', flag: 'rclone-binary', kind: 'string', default: 'rclone', help: 'The rclone executable to run.' },
  { env: 'SYNC_TRASH_DAYS', flag: 'trash-days', kind: 'string', default: '30', help: "Days a removed or overwritten file stays in its side's trash (<root>/.rclonesync-trash/<run stamp>/); 0 makes removals final." },
  { env: 'SYNC_TRASH_PATH1', flag: 'trash-path1', kind: 'string', default: undefined, help: "path1's trash elsewhere on the same remote (default: <path1>/.rclonesync-trash)." },
  { env: 'SYNC_TRASH_PATH2', flag: 'trash-path2', kind: 'string', default: undefined, help: "path2's trash elsewhere on the same remote (default: <path2>/.rclonesync-trash)." },
  { env: 'LOG_LEVEL', flag: 'log-level', kind: 'string', default: 'info', help: 'debug, info, warn or error.' },
  { env: 'LOG_FORMAT', flag: 'log-format', kind: 'string', default: undefined, help: 'json or pretty (default: pretty on a terminal, json otherwise).' },
  { env: 'SYNC_SCHEDULE', flag: 'schedule', kind: 'string', default: '*/30 * * * *', help: 'Cron schedule of the daemon (5 or 6 fields), in the TZ time zone.', appliance: true },
  { env: 'SYNC_RUN_ON_START', flag: 'run-on-start', kind: 'boolean', default: 'true', help: 'The daemon runs once at start, before the first scheduled time.', appliance: true },
  { env: 'SYNC_HEALTH_MAX_AGE', flag: 'health-max-age', kind: 'string', default: undefined, help: 'How old the last success may be for `health` to pass (e.g. 90m, 2h; default twice the schedule interval).', appliance: true },
  { env: 'SYNC_HTTP_PORT', flag: 'http-port', kind: 'string', default: undefined, help: 'Serve /healthz, /status and /metrics on this port (off by default).', appliance: true },
  { env: 'SYNC_PING_URL', flag: 'ping-url', kind: 'string', default: undefined, help: 'healthchecks.io-style URL: <url>/start, <url> on success, <url>/fail on failure.', appliance: true },
  { env: 'SYNC_NOTIFY_URL', flag: 'notify-url', kind: 'string', default: undefined, help: 'On failure, safety stop and conflicts: a JSON webhook, or a message to ntfy (ntfy://host/topic, https://ntfy.sh/topic), Gotify (gotify://host/?token=...), Discord or Slack webhook URLs.', appliance: true },
];

/** Outside the image (which sets SYNC_STATE_DIR=/state): the XDG state directory. */
export function defaultStateDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_STATE_HOME?.trim();
  return join(xdg && isAbsolute(xdg) ? xdg : join(env.HOME?.trim() || homedir(), '.local', 'state'), 'rclonesync');
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';

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
}

/** Parses argv; flags for settings become overrides of the matching environment variables. */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    help: { type: 'boolean' },
    version: { type: 'boolean' },
    json: { type: 'boolean' },
    side: { type: 'string' },
    from: { type: 'string' },
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
  };
}

const settingByEnv = new Map(SETTINGS.map((s) => [s.env, s]));
/** How messages name a setting: `SYNC_PATH2 (--path2)`. */
export const culprit = (env: string): string => {
  const setting = settingByEnv.get(env);
  return setting ? `${env} (--${setting.flag})` : env;
};

/**
 * Builds the configuration from the environment with flag overrides. Throws ConfigError naming the
 * variable and its flag, the value given, and what is accepted.
 */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: Record<string, string> = {}, isTty = false, options: { path2Optional?: boolean } = {}): Config {
  const merged: Record<string, string | undefined> = { ...env, ...overrides };
  // env-var treats '' as set; an empty variable in a compose file means "not set" to users.
  for (const key of Object.keys(merged)) if (merged[key] === '' && settingByEnv.get(key)?.default !== '') delete merged[key];
  const from = envVar.from(merged);
  const get = (name: string) => {
    const setting = settingByEnv.get(name);
    const variable = from.get(name);
    return setting?.default !== undefined ? variable.default(setting.default) : variable;
  };
  const wrap = <T>(name: string, read: () => T): T => {
    try {
      return read();
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      const value = merged[name];
      throw new ConfigError(`${culprit(name)}: ${describeEnvVarError(error as Error)}${value !== undefined ? ` (got "${value}")` : ''}`);
    }
  };
  const bool = (name: string): boolean => wrap(name, () => get(name).required().asBoolStrict());
  const oneOf = <T extends string>(name: string, accepted: readonly T[]): T =>
    wrap(name, () => {
      const value = get(name).asString();
      const normalized = value?.trim().toLowerCase().replace(/\s+/g, '') as T | undefined;
      if (normalized === undefined || !accepted.includes(normalized)) {
        throw new ConfigError(`${culprit(name)} must be one of ${accepted.join(', ')} (got "${value}")`);
      }
      return normalized;
    });

  const path1 = wrap('SYNC_PATH1', () => get('SYNC_PATH1').required().asString()).trim();
  const path2Raw = merged.SYNC_PATH2;
  if ((path2Raw === undefined || path2Raw.trim() === '') && !options.path2Optional) {
    throw new ConfigError(
      `${culprit('SYNC_PATH2')} is required: the rclone path to keep in two-way sync with SYNC_PATH1 (${path1}), e.g. "gdrive:Backup" or "/mnt/other"`,
    );
  }
  // '' only for `status` and `health`, which then read the state folder's one pair.
  const path2 = path2Raw?.trim() ?? '';
  if (path1 === path2) throw new ConfigError(`SYNC_PATH1 and SYNC_PATH2 are the same path ("${path1}"): nothing to sync`);

  const maxDeletePercent = wrap('SYNC_MAX_DELETE', () => {
    const raw = get('SYNC_MAX_DELETE').asString() ?? '50';
    const value = Number(raw.trim().replace(/%$/, ''));
    if (!/^\s*\d+(\.\d+)?%?\s*$/.test(raw) || !(value >= 0 && value <= 100)) {
      throw new ConfigError(`${culprit('SYNC_MAX_DELETE')} must be a percentage from 0 to 100 (got "${raw}")`);
    }
    return value;
  });

  const compareRaw = oneOf('SYNC_COMPARE', ['size,modtime', 'checksum', 'size,modtime,checksum'] as const);
  const compare: CompareMode = compareRaw === 'size,modtime' ? 'size,modtime' : 'checksum';

  const rcloneArgs = wrap('SYNC_RCLONE_ARGS', () => splitShellWords(get('SYNC_RCLONE_ARGS').asString() ?? ''));

  const logFormat: LogFormat = merged.LOG_FORMAT === undefined ? (isTty ? 'pretty' : 'json') : oneOf('LOG_FORMAT', ['json', 'pretty'] as const);

  const schedule = wrap('SYNC_SCHEDULE', () => {
    const pattern = get('SYNC_SCHEDULE').asString() ?? '*/30 * * * *';
    const fields = pattern.trim().split(/\s+/).length;
    // croner also takes a 7th field (years), which a schedule that runs for ever has no use for.
    if (!pattern.trim().startsWith('@') && fields !== 5 && fields !== 6) {
      throw new ConfigError(
        `${culprit('SYNC_SCHEDULE')} has ${fields} fields (got "${pattern}"): a cron schedule has 5 (minute hour day-of-month month day-of-week) or 6 (seconds first), e.g. "*/30 * * * *"`,
      );
    }
    let next: Date | null;
    try {
      const cron = new Cron(pattern, { paused: true, timezone: merged.TZ });
      next = cron.nextRun();
      cron.stop();
    } catch (error) {
      throw new ConfigError(`${culprit('SYNC_SCHEDULE')} is not a valid cron schedule (got "${pattern}"): ${(error as Error).message}`);
    }
    if (!next) throw new ConfigError(`${culprit('SYNC_SCHEDULE')} never fires (got "${pattern}"): no date matches it (February 30th, say)`);
    return pattern;
  });

  const httpPort = wrap('SYNC_HTTP_PORT', () => get('SYNC_HTTP_PORT').asPortNumber());
  const url = (name: string) =>
    wrap(name, () => {
      const value = get(name).asString();
      if (value === undefined) return undefined;
      let parsed: URL;
      try {
        parsed = new URL(value);
      } catch {
        throw new ConfigError(`${culprit(name)} must be an http(s) URL (got "${value}")`);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError(`${culprit(name)} must be an http(s) URL (got "${value}")`);
      return value.replace(/\/+$/, '');
    });

  const healthMaxAgeMs = wrap('SYNC_HEALTH_MAX_AGE', () => {
    const raw = get('SYNC_HEALTH_MAX_AGE').asString();
    if (raw === undefined) return undefined;
    const ms = parseDuration(raw);
    if (ms === undefined || ms <= 0) throw new ConfigError(`${culprit('SYNC_HEALTH_MAX_AGE')} must be a duration such as 3600, 90m, 2h or 1d (got "${raw}")`);
    return ms;
  });

  const stallTimeoutMs = wrap('SYNC_STALL_TIMEOUT', () => {
    const raw = get('SYNC_STALL_TIMEOUT').required().asString();
    const ms = parseDuration(raw);
    // rclone reports progress once a second: a shorter wait would stop transfers that are moving.
    if (ms === undefined || (ms > 0 && ms < 5000)) {
      throw new ConfigError(`${culprit('SYNC_STALL_TIMEOUT')} must be a duration of at least 5s such as 30s, 5m or 1h, or 0 to never stop a stalled rclone (got "${raw}")`);
    }
    return ms;
  });

  const checkFilename = wrap('SYNC_CHECK_FILENAME', () => get('SYNC_CHECK_FILENAME').asString() ?? 'RCLONE_TEST');
  if (checkFilename.includes('/') || checkFilename.trim() === '') {
    throw new ConfigError(`${culprit('SYNC_CHECK_FILENAME')} must be a plain file name without "/" (got "${checkFilename}")`);
  }

  const trashDays = wrap('SYNC_TRASH_DAYS', () => {
    const raw = get('SYNC_TRASH_DAYS').asString() ?? '30';
    if (!/^\s*\d+(\.\d+)?\s*$/.test(raw)) throw new ConfigError(`${culprit('SYNC_TRASH_DAYS')} must be a number of days, 0 or more (0 turns the trash off) (got "${raw}")`);
    return Number(raw);
  });
  const trashPath = (name: 'SYNC_TRASH_PATH1' | 'SYNC_TRASH_PATH2', root: string, rootName: string) =>
    wrap(name, () => {
      const value = get(name).asString()?.trim();
      if (value === undefined || value === '') return undefined;
      if (remoteOf(value) !== remoteOf(root)) {
        throw new ConfigError(
          `${culprit(name)} must be on the same remote as ${rootName} (${remoteOf(root) === 'local' ? 'the local disk' : remoteOf(root)}), so that trashing is a server-side move (got "${value}")`,
        );
      }
      if (value.replace(/\/+$/, '') === root.replace(/\/+$/, '')) throw new ConfigError(`${culprit(name)} must not be ${rootName} itself (got "${value}")`);
      return value;
    });

  return {
    engine: {
      path1,
      path2,
      stateDir: merged.SYNC_STATE_DIR?.trim() || defaultStateDir(merged),
      resync: bool('SYNC_RESYNC'),
      dryRun: bool('SYNC_DRY_RUN'),
      maxDeletePercent,
      force: bool('SYNC_FORCE'),
      checkAccess: bool('SYNC_CHECK_ACCESS'),
      checkFilename,
      filtersFile: wrap('SYNC_FILTERS_FILE', () => get('SYNC_FILTERS_FILE').asString()),
      compare,
      conflictResolve: oneOf('SYNC_CONFLICT_RESOLVE', CONFLICT_RESOLVES),
      rcloneArgs,
      rcloneBinary: wrap('SYNC_RCLONE_BINARY', () => get('SYNC_RCLONE_BINARY').required().asString()),
      trashDays,
      trashPaths: { path1: trashPath('SYNC_TRASH_PATH1', path1, 'SYNC_PATH1'), path2: trashPath('SYNC_TRASH_PATH2', path2, 'SYNC_PATH2') },
      stallTimeoutMs,
    },
    log: { level: oneOf('LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const), format: logFormat },
    appliance: {
      schedule,
      runOnStart: bool('SYNC_RUN_ON_START'),
      healthMaxAgeMs,
      httpPort,
      pingUrl: url('SYNC_PING_URL'),
      notifyUrl: wrap('SYNC_NOTIFY_URL', () => {
        const value = get('SYNC_NOTIFY_URL').asString();
        if (value === undefined) return undefined;
        try {
          notifyTarget(value);
        } catch (error) {
          throw new ConfigError(`${culprit('SYNC_NOTIFY_URL')} ${(error as Error).message} (got "${value}")`);
        }
        return value.replace(/\/+$/, '');
      }),
    },
  };
}

function describeEnvVarError(error: Error): string {
  // env-var says: 'env-var: "SYNC_DRY_RUN" should be either "true", "false", "TRUE", or "FALSE"'
  return error.message.replace(/^env-var:\s*"[^"]*"\s*/, '').replace(/^should/, 'should');
}

/** Splits like a POSIX shell (quotes, escapes) but refuses what a shell would do besides splitting. */
export function splitShellWords(text: string): string[] {
  const unbalanced = unbalancedQuote(text);
  if (unbalanced) {
    throw new ConfigError(`${culprit('SYNC_RCLONE_ARGS')} has ${unbalanced}; quote words the way a shell would, e.g. --exclude "My Files/**" (got "${text}")`);
  }
  const words = shellParse(text, (name) => `$${name}`);
  return words.map((word) => {
    if (typeof word === 'string') return word;
    const what = 'op' in word ? `"${word.op}"` : 'comment' in word ? 'a comment' : 'a pattern';
    throw new ConfigError(`${culprit('SYNC_RCLONE_ARGS')} contains ${what}; give plain rclone arguments such as "--transfers 8 --bwlimit 5M" (got "${text}")`);
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

export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = (match[2] ?? 's').toLowerCase();
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * factor;
}

export function helpText(): string {
  const lines = [
    'rclonesync - safe two-way sync of two rclone paths',
    '',
    'Usage: rclonesync <command> [flags]',
    '',
    'Commands:',
    '  run       one sync cycle, then exit (exit codes below)',
    '  daemon    run on the SYNC_SCHEDULE schedule until stopped',
    '  status    recent runs of this pair (--json for machines)',
    '  trash list [--json] [--side path1|path2]',
    '            what the sync moved to each side\'s trash, newest first',
    '  trash restore PATH [--side path1|path2] [--from STAMP]',
    '            move the newest (or that run\'s) trashed version back (beside PATH if taken)',
    '  health    exit 0 if the last run succeeded recently, 1 otherwise',
    '',
    'Settings (environment variable, flag; flags override the environment):',
  ];
  for (const s of SETTINGS) {
    const def = s.default === undefined ? 'not set' : s.default === '' ? "''" : s.default;
    lines.push(`  ${s.env.padEnd(22)} --${s.flag.padEnd(17)} default: ${def}`);
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
