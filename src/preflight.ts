/**
 * The start-of-run checks of `run` and `daemon`: before anything changes, make sure that what a run
 * needs is there and usable by the uid that runs it — the state folder, rclone's config file, each
 * local side (read and write), each remote's name, the filter rules — and otherwise stop with a
 * ConfigError (exit 2) naming the setting, the value, the culprit's owner, the running uid and the
 * fix. Without them rclone fails halfway with a bare errno, or succeeds at the wrong thing: a
 * mistyped local folder is created and filled with a copy of the other side.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { culprit, type EngineConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { accessProblem, currentRunner, describeAccessProblem, nearestExisting, type Runner } from './permissions.ts';
import { isMemoryOnlyConfig } from './appliance/rclone-config.ts';
import { filterRuleProblems } from './rclone/filters.ts';
import { parseRclonePath, remoteTypeVariable } from './rclone/paths.ts';
import { listRemotes, type RemoteList } from './rclone/remotes.ts';
import { pairId, pairPaths } from './state/pair.ts';

export interface PreflightOptions {
  /** The environment rclone will see (RCLONE_CONFIG, RCLONE_CONFIG_<NAME>_*). */
  readonly env: NodeJS.ProcessEnv;
  readonly runner?: Runner;
  readonly listRemotes?: (binary: string, env: NodeJS.ProcessEnv) => Promise<RemoteList>;
}

const SIDE_SETTINGS = [
  ['SYNC_PATH1', 'path1'],
  ['SYNC_PATH2', 'path2'],
] as const;

export async function preflight(config: EngineConfig, options: PreflightOptions): Promise<void> {
  const runner = options.runner ?? currentRunner();
  await checkStateDir(config, runner);
  await checkRcloneConfigFile(options.env, runner);
  const firstRun = !(await stat(pairPaths(config.stateDir, pairId(config.path1, config.path2)).snapshot).then(() => true, () => false));
  const remotes: { setting: string; value: string; name: string }[] = [];
  for (const [setting, key] of SIDE_SETTINGS) {
    const value = config[key];
    const parsed = parseRclonePath(value);
    if (parsed.kind === 'local') await checkLocalSide(setting, value, firstRun, runner);
    if (parsed.kind === 'remote') remotes.push({ setting, value, name: parsed.name });
  }
  if (remotes.length > 0) {
    const known = await (options.listRemotes ?? listRemotes)(config.rcloneBinary, options.env);
    const configured = options.env.RCLONE_CONFIG?.trim();
    const configFileExists = configured ? await stat(resolve(configured)).then(() => true, () => false) : true;
    for (const remote of remotes) checkRemoteDefined(remote, { known, binary: config.rcloneBinary, env: options.env, configFileExists });
  }
  if (config.filtersFile) await checkFiltersFile(config.filtersFile, runner);
}

async function checkStateDir(config: EngineConfig, runner: Runner): Promise<void> {
  const dir = resolve(config.stateDir);
  const subject = `${culprit('SYNC_STATE_DIR')} "${config.stateDir}"`;
  const problem = await accessProblem(dir, 'folder', 'read-write');
  if (problem?.kind === 'missing') {
    const parent = await nearestExisting(dir);
    const parentProblem = await accessProblem(parent, 'folder', 'read-write');
    if (parentProblem) {
      throw new ConfigError(describeAccessProblem(`${subject} does not exist and cannot be created: the folder above it, "${parent}",`, parentProblem, runner));
    }
    return;
  }
  if (problem) throw new ConfigError(describeAccessProblem(subject, problem, runner, { recursive: true }));
  // Made earlier by another uid (a first run as root, say): the pair's own folder and files.
  const paths = pairPaths(dir, pairId(config.path1, config.path2));
  const pairProblem = await accessProblem(paths.dir, 'folder', 'read-write');
  if (pairProblem && pairProblem.kind !== 'missing') {
    throw new ConfigError(describeAccessProblem(`the pair's state folder "${paths.dir}" (in ${culprit('SYNC_STATE_DIR')})`, pairProblem, runner, { recursive: true }));
  }
  for (const file of [paths.snapshot, paths.history, paths.journal]) {
    const fileProblem = await accessProblem(file, 'file', 'read');
    if (fileProblem && fileProblem.kind !== 'missing') {
      throw new ConfigError(describeAccessProblem(`the pair's state file "${file}" (in ${culprit('SYNC_STATE_DIR')})`, fileProblem, runner));
    }
  }
}

async function checkRcloneConfigFile(env: NodeJS.ProcessEnv, runner: Runner): Promise<void> {
  const configured = env.RCLONE_CONFIG?.trim();
  if (configured === undefined || isMemoryOnlyConfig(configured)) return;
  const problem = await accessProblem(resolve(configured), 'file', 'read');
  // Missing is normal when every remote comes from RCLONE_CONFIG_<NAME>_* variables.
  if (!problem || problem.kind === 'missing') return;
  if (problem.kind === 'wrong-type') {
    throw new ConfigError(
      `RCLONE_CONFIG "${configured}" is ${problem.is === 'folder' ? 'a folder' : 'not a file'}: point it at rclone's config file, or set it to /dev/null when every remote is defined by RCLONE_CONFIG_<NAME>_* variables`,
    );
  }
  throw new ConfigError(describeAccessProblem(`RCLONE_CONFIG "${configured}"`, problem, runner));
}

async function checkLocalSide(setting: string, value: string, firstRun: boolean, runner: Runner): Promise<void> {
  const subject = `${culprit(setting)} "${value}"`;
  const problem = await accessProblem(resolve(value), 'folder', 'read-write');
  if (!problem) return;
  if (problem.kind === 'missing') {
    // On later runs a vanished side is the engine's safety gate's to judge (a mount that went away).
    if (!firstRun) return;
    const create = `create it first (mkdir -p "${value}"). The first run of a pair does not create a missing local folder: a mistyped path would be filled with a copy of the other side.`;
    if (isAbsolute(value)) throw new ConfigError(`${subject} does not exist; ${create}`);
    throw new ConfigError(
      `${subject} has no colon, so it is taken as a local folder (relative to ${process.cwd()}), and that does not exist. ` +
        `A remote is written with a colon: "${value}:" or "${value}:folder". If you meant a local folder, ${create}`,
    );
  }
  if (problem.kind === 'wrong-type') throw new ConfigError(`${subject} is ${problem.is === 'file' ? 'a file' : 'not a folder'}: each side of a pair is a folder`);
  throw new ConfigError(describeAccessProblem(subject, problem, runner, { recursive: true }));
}

interface RemoteContext {
  readonly known: RemoteList;
  readonly binary: string;
  readonly env: NodeJS.ProcessEnv;
  readonly configFileExists: boolean;
}

function checkRemoteDefined(remote: { setting: string; value: string; name: string }, { known, binary, env, configFileExists }: RemoteContext): void {
  if (known.kind === 'no-binary') {
    throw new ConfigError(`${culprit('SYNC_RCLONE_BINARY')}: "${binary}" was not found; install rclone or set it to the rclone executable`);
  }
  // rclone could not say (an encrypted config without its password): the run itself will tell.
  if (known.kind === 'unknown') return;
  if (known.names.includes(remote.name) || env[remoteTypeVariable(remote.name)] !== undefined) return;
  const fromEnv = known.names.filter((n) => env[remoteTypeVariable(n)] !== undefined);
  const fromFile = known.names.filter((n) => !fromEnv.includes(n));
  const configured = env.RCLONE_CONFIG?.trim();
  const file = !configured ? "rclone's default config file" : isMemoryOnlyConfig(configured) ? `RCLONE_CONFIG=${configured} (no config file)` : `the config file ${configured}${configFileExists ? '' : ' (which does not exist)'}`;
  const defined =
    known.names.length === 0
      ? `No remote is defined: ${file} has none, and no RCLONE_CONFIG_<NAME>_TYPE variable is set.`
      : `Defined remotes: ${file} has ${fromFile.length ? fromFile.join(', ') : 'none'}; RCLONE_CONFIG_* variables define ${fromEnv.length ? fromEnv.join(', ') : 'none'}.`;
  const near = closest(remote.name, known.names);
  throw new ConfigError(
    `${culprit(remote.setting)} "${remote.value}" names the remote "${remote.name}", which rclone does not know. ${defined}` +
      `${near ? ` Did you mean "${near}:"?` : ''} Fix the name, or define the remote (rclone config, or ${remoteTypeVariable(remote.name)}=… variables).`,
  );
}

async function checkFiltersFile(file: string, runner: Runner): Promise<void> {
  const subject = `${culprit('SYNC_FILTERS_FILE')} "${file}"`;
  const problem = await accessProblem(resolve(file), 'file', 'read');
  if (problem?.kind === 'missing') throw new ConfigError(`${subject} cannot be read: it does not exist (ENOENT)`);
  if (problem) throw new ConfigError(describeAccessProblem(subject, problem, runner));
  const problems = filterRuleProblems(await readFile(file, 'utf8'));
  const [first, ...more] = problems;
  if (!first) return;
  const others = more.length ? ` (${more.length} more bad line${more.length === 1 ? '' : 's'}: ${more.slice(0, 10).map((p) => p.line).join(', ')})` : '';
  throw new ConfigError(`${subject} line ${first.line}: "${first.rule}" is ${first.problem.startsWith('not ') ? first.problem : `a bad pattern: ${first.problem}`}${others}`);
}

/** A defined name one or two typing slips away, for "did you mean". */
function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance <= 2 && (!best || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

/** Levenshtein distance with transpositions counted as one edit (gdirve -> gdrive). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
