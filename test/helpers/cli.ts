/**
 * Helpers for integration tests that drive the real CLI (`node src/cli.ts`) against real rclone
 * and real folders: spawning it with a clean environment, parsing its JSON log lines, and reading,
 * writing and inspecting directory trees.
 *
 * Every test makes its own `Sandbox` (a temp folder holding path1/, path2/, state/ and a scratch
 * area) and removes it afterwards, so test files can run in parallel; `useSandbox` sets that up
 * for a whole test file.
 */
import { execa, type ResultPromise } from 'execa';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect } from 'vitest';
import { conflictName } from '../../src/sync/reconcile.ts';
import { TRASH_FOLDER } from '../../src/sync/trash.ts';
import type { Side } from '../../src/model.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(REPO_ROOT, 'src', 'cli.ts');

export type Env = Record<string, string | undefined>;

// ---------------------------------------------------------------------------------------------
// Running the CLI
// ---------------------------------------------------------------------------------------------

/** One JSON log line as pino prints it (level is a label: 'info', 'warn', ...). */
export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly time?: string;
  readonly [key: string]: unknown;
}

export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Every stdout line that parsed as a JSON object. */
  readonly logs: LogLine[];
  readonly durationMs: number;
  /** When the process ended (Date.now()). */
  readonly endedAt: number;
}

/**
 * The environment the CLI sees: the test process's own minus anything that could change how the
 * engine or rclone behaves (SYNC_*, LOG_*, RCLONE_*), plus the given variables. An `undefined`
 * value removes a variable.
 */
export function cleanEnv(env: Env = {}): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(SYNC_|LOG_|RCLONE_)/.test(key)) continue;
    result[key] = value;
  }
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete result[key];
    else result[key] = value;
  }
  return result;
}

export function parseLogLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const value = JSON.parse(line) as unknown;
      if (value && typeof value === 'object' && !Array.isArray(value)) lines.push(value as LogLine);
    } catch {
      // not a log line
    }
  }
  return lines;
}

/** Runs `node src/cli.ts ...args` to completion. Never rejects on a non-zero exit. */
export async function runCli(args: readonly string[], env: Env, options: { timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  const started = Date.now();
  const result = await execa(process.execPath, [CLI, ...args], {
    env: cleanEnv(env),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    cwd: options.cwd ?? REPO_ROOT,
    timeout: options.timeoutMs ?? 60_000,
  });
  const stdout = String(result.stdout ?? '');
  const endedAt = Date.now();
  return {
    exitCode: result.exitCode ?? -1,
    stdout,
    stderr: String(result.stderr ?? ''),
    logs: parseLogLines(stdout),
    durationMs: endedAt - started,
    endedAt,
  };
}

/**
 * A CLI process that keeps running while the test watches it: log lines are collected as they come,
 * `waitForLog` resolves when one matches, `result` when the process ends. With `detached`, the CLI
 * leads its own process group, so `killGroup` reaches rclone too.
 */
export interface RunningCli {
  readonly pid: number;
  readonly logs: LogLine[];
  readonly startedAt: number;
  waitForLog(match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine | undefined>;
  /** Sends a signal to the CLI process only. */
  kill(signal: NodeJS.Signals): void;
  /** Sends a signal to the CLI's whole process group (needs `detached`). */
  killGroup(signal: NodeJS.Signals): void;
  readonly result: Promise<CliResult>;
}

export function spawnCli(args: readonly string[], env: Env, options: { detached?: boolean } = {}): RunningCli {
  const startedAt = Date.now();
  const logs: LogLine[] = [];
  const waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine | undefined) => void }>();
  const subprocess: ResultPromise = execa(process.execPath, [CLI, ...args], {
    env: cleanEnv(env),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    cwd: REPO_ROOT,
    detached: options.detached ?? false,
    timeout: 120_000,
  });
  let stdout = '';
  let stderr = '';
  let pending = '';
  subprocess.stdout!.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    stdout += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of parseLogLines(lines.join('\n'))) {
      logs.push(line);
      for (const waiter of waiters) {
        if (waiter.match(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    }
  });
  subprocess.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const result = (async (): Promise<CliResult> => {
    const r = await subprocess;
    const endedAt = Date.now();
    for (const waiter of waiters) waiter.resolve(undefined);
    waiters.clear();
    return { exitCode: r.exitCode ?? -1, stdout, stderr, logs: parseLogLines(stdout), durationMs: endedAt - startedAt, endedAt };
  })();
  const pid = subprocess.pid!;
  return {
    pid,
    logs,
    startedAt,
    result,
    waitForLog(match, timeoutMs) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolvePromise) => {
        const waiter = { match, resolve: resolvePromise };
        waiters.add(waiter);
        setTimeout(() => {
          if (waiters.delete(waiter)) resolvePromise(undefined);
        }, timeoutMs).unref();
      });
    },
    kill(signal) {
      process.kill(pid, signal);
    },
    killGroup(signal) {
      process.kill(-pid, signal);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Reading the log
// ---------------------------------------------------------------------------------------------

export interface ActionLine extends LogLine {
  readonly action: 'copy' | 'delete' | 'conflict' | 'file-folder-clash';
  readonly path: string;
}

export const actionsOf = (logs: readonly LogLine[]): ActionLine[] => logs.filter((l): l is ActionLine => typeof l.action === 'string');
export const copiesOf = (logs: readonly LogLine[]) => actionsOf(logs).filter((l) => l.action === 'copy');
export const deletesOf = (logs: readonly LogLine[]) => actionsOf(logs).filter((l) => l.action === 'delete');
export const conflictsOf = (logs: readonly LogLine[]) => actionsOf(logs).filter((l) => l.action === 'conflict');

export interface SummaryLine extends LogLine {
  readonly summary: true;
  readonly outcome: string;
  readonly exitCode: number;
  readonly dryRun: boolean;
  readonly resync: boolean;
  readonly copiesToPath1: number;
  readonly copiesToPath2: number;
  readonly deletesOnPath1: number;
  readonly deletesOnPath2: number;
  readonly conflicts: number;
}

export function summaryOf(logs: readonly LogLine[]): SummaryLine | undefined {
  return logs.find((l): l is SummaryLine => l.summary === true);
}

/** The line that explains a failed run (it carries `outcome`, and `gate` for a safety stop). */
export function failureOf(logs: readonly LogLine[]): (LogLine & { outcome: string; gate?: string }) | undefined {
  return logs.find((l) => typeof l.outcome === 'string' && l.summary !== true) as (LogLine & { outcome: string; gate?: string }) | undefined;
}

/** A readable dump of a result for assertion messages. */
export function dump(result: CliResult): string {
  return `exit ${result.exitCode}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

// ---------------------------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------------------------

/** Relative '/'-separated path -> content. Strings are written as UTF-8. */
export type Tree = Record<string, string | Buffer>;

export async function writeTree(root: string, tree: Tree): Promise<void> {
  for (const [path, content] of Object.entries(tree)) await writeTreeFile(root, path, content);
}

export async function writeTreeFile(root: string, path: string, content: string | Buffer, mtime?: Date | number): Promise<void> {
  const full = join(root, ...path.split('/'));
  await mkdir(dirname(full), { recursive: true });
  await writeFile(full, content);
  if (mtime !== undefined) await setMtime(root, path, mtime);
}

/** The side's trash folder: part of the root on disk, never of the synced tree. */
export { TRASH_FOLDER };

/**
 * All regular files under root, depth first, as relative '/'-separated paths, sorted. The trash
 * folder is left out unless asked for: it is never synced, so two sides in sync may differ there.
 */
export async function listFiles(root: string, options: { withTrash?: boolean } = {}): Promise<string[]> {
  const result: string[] = [];
  const walk = async (dir: string) => {
    if (!options.withTrash && dir === join(root, TRASH_FOLDER)) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) result.push(relative(root, full).split(sep).join('/'));
    }
  };
  await walk(root);
  return result.sort();
}

/** Every file under root with its content as UTF-8 text. */
export async function readTree(root: string): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  for (const path of await listFiles(root)) tree[path] = await readFile(join(root, ...path.split('/')), 'utf8');
  return tree;
}

/** Every file under root with the sha256 of its bytes: for byte-for-byte comparison of trees of any size. */
export async function digestTree(root: string, options: { withTrash?: boolean } = {}): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  for (const path of await listFiles(root, options)) tree[path] = sha256(await readFile(join(root, ...path.split('/'))));
  return tree;
}

export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

export interface FileStat {
  readonly size: number;
  readonly mtimeMs: number;
  /** Nanosecond mtime as a string (bigint does not survive toEqual diffs nicely). */
  readonly mtimeNs: string;
  readonly ino: number;
}

export async function statTree(root: string): Promise<Record<string, FileStat>> {
  const tree: Record<string, FileStat> = {};
  for (const path of await listFiles(root)) {
    const s = await stat(join(root, ...path.split('/')), { bigint: true });
    tree[path] = { size: Number(s.size), mtimeMs: Number(s.mtimeMs), mtimeNs: s.mtimeNs.toString(), ino: Number(s.ino) };
  }
  return tree;
}

export async function setMtime(root: string, path: string, mtime: Date | number): Promise<void> {
  const when = typeof mtime === 'number' ? new Date(mtime) : mtime;
  await utimes(join(root, ...path.split('/')), when, when);
}

export async function mtimeOf(root: string, path: string): Promise<number> {
  return (await stat(join(root, ...path.split('/')))).mtimeMs;
}

export async function removeFile(root: string, path: string): Promise<void> {
  await rm(join(root, ...path.split('/')));
}

export async function readTreeFile(root: string, path: string): Promise<string> {
  return readFile(join(root, ...path.split('/')), 'utf8');
}

/** Deterministic pseudo-random bytes (incompressible enough for rclone's bwlimit to matter). */
export function randomBytesSeeded(size: number, seed: number): Buffer {
  const buffer = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buffer.writeUInt32LE(x, Math.min(i, size - 4));
  }
  return buffer;
}

/** The run's stamp in a conflict copy's name (`20261125T143200Z`) and the counter a taken name gets (`-2`). */
const CONFLICT_STAMP = String.raw`\d{8}T\d{6}Z(-\d+)?`;

/** Paths that look like conflict copies (`name.conflict-path1-<stamp>.ext`). */
export const conflictCopies = (paths: Iterable<string>): string[] => {
  const pattern = new RegExp(String.raw`\.conflict-path[12]-${CONFLICT_STAMP}`);
  return [...paths].filter((p) => pattern.test(p));
};

/** Stands for the stamp while the engine's own `conflictName` builds the name; NUL is in no file name. */
const STAMP_PLACEHOLDER = '\0';

/** Matches a conflict copy of `path` made for `side`, named as the engine names it (`.ext` stays last). */
export function conflictCopyPattern(path: string, side: Side): RegExp {
  const quote = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const name = quote(conflictName(path, side, STAMP_PLACEHOLDER));
  return new RegExp(`^${name.replace(STAMP_PLACEHOLDER, CONFLICT_STAMP)}$`);
}

/**
 * Checks the one conflict log line of a file edited on both sides, the remote (path2) edit being the
 * newer, and returns the tree both sides should then hold. With SYNC_CONFLICT_RESOLVE=none both
 * versions are kept as conflict copies; with `newer` the remote version keeps the name and the local
 * one becomes the loser's copy. The copies' names must match `conflictCopyPattern`.
 */
export function expectedTreeAfterConflict(
  conflict: LogLine | undefined,
  resolve: 'none' | 'newer',
  file: { path: string; local: string; remote: string },
  untouched: Record<string, string>,
): Record<string, string> {
  if (resolve === 'none') {
    expect(conflict!.path1Copy).toMatch(conflictCopyPattern(file.path, 'path1'));
    expect(conflict!.path2Copy).toMatch(conflictCopyPattern(file.path, 'path2'));
    return { ...untouched, [String(conflict!.path1Copy)]: file.local, [String(conflict!.path2Copy)]: file.remote };
  }
  expect(conflict).toMatchObject({ winner: 'path2' });
  expect(conflict!.loserCopy).toMatch(conflictCopyPattern(file.path, 'path1'));
  return { ...untouched, [file.path]: file.remote, [String(conflict!.loserCopy)]: file.local };
}

// ---------------------------------------------------------------------------------------------
// Sandbox: one pair of sides and a state directory per test
// ---------------------------------------------------------------------------------------------

export interface Sandbox {
  readonly root: string;
  readonly path1: string;
  readonly path2: string;
  readonly stateDir: string;
  /** A scratch folder for filters files and the like. */
  readonly scratch: string;
  /** The environment for a run of this pair: LOG_FORMAT=json, a non-existent RCLONE_CONFIG, TMPDIR inside the sandbox, plus `extra`. */
  env(extra?: Env): Env;
  /** `rclonesync run` on this pair. */
  run(extra?: Env, args?: readonly string[]): Promise<CliResult>;
  /** The pair's state folder (there is exactly one per pair). */
  pairDir(): Promise<string>;
  /** Every file in the pair's state folder with its bytes (for "left untouched" checks). */
  stateFiles(): Promise<Record<string, Buffer>>;
  cleanup(): Promise<void>;
}

export async function makeSandbox(prefix = 'rs-it-'): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const path1 = join(root, 'path1');
  const path2 = join(root, 'path2');
  const stateDir = join(root, 'state');
  const scratch = join(root, 'scratch');
  // The CLI's own temporary files (rclone file lists) go here too, so even a run killed with
  // SIGKILL leaves nothing behind once the sandbox is removed.
  const tmp = join(root, 'tmp');
  await Promise.all([mkdir(path1), mkdir(path2), mkdir(stateDir), mkdir(scratch), mkdir(tmp)]);
  const sandbox: Sandbox = {
    root,
    path1,
    path2,
    stateDir,
    scratch,
    env(extra = {}) {
      return {
        SYNC_PATH1: path1,
        SYNC_PATH2: path2,
        SYNC_STATE_DIR: stateDir,
        LOG_FORMAT: 'json',
        // No config file: rclone uses defaults and RCLONE_CONFIG_* remotes only.
        RCLONE_CONFIG: join(root, 'no-rclone.conf'),
        TMPDIR: tmp,
        ...extra,
      };
    },
    run(extra = {}, args = []) {
      return runCli(['run', ...args], sandbox.env(extra));
    },
    async pairDir() {
      const entries = (await readdir(stateDir, { withFileTypes: true })).filter((e) => e.isDirectory());
      if (entries.length !== 1) throw new Error(`expected one pair folder in ${stateDir}, found ${entries.map((e) => e.name).join(', ') || 'none'}`);
      return join(stateDir, entries[0]!.name);
    },
    async stateFiles() {
      const files: Record<string, Buffer> = {};
      for (const path of await listFiles(stateDir)) files[path] = await readFile(join(stateDir, ...path.split('/')));
      return files;
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  return sandbox;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A fixed, distinct modification time `minutes` in the past, so "modified" never hinges on clock resolution. */
export function minutesAgo(minutes: number, options: { wholeSeconds?: boolean } = {}): Date {
  const ms = Date.now() - minutes * 60_000;
  // For remotes that keep modtimes to the second (sftp), so a time crosses over unchanged.
  return new Date(options.wholeSeconds ? Math.floor(ms / 1000) * 1000 : ms);
}

export interface SandboxPerTestOptions {
  /** Added to the environment of every `ok` run (before its own `extra`). */
  readonly runEnv?: () => Env;
  /** More to show when `ok` fails (a server's log, say). */
  readonly failureDetail?: () => string;
}

export interface SandboxPerTest {
  /** The running test's sandbox: the same object in every test, it stands for a fresh one each time. */
  readonly sandbox: Sandbox;
  /** `rclonesync run [...args]` with `extra` in its environment, expecting exit 0. */
  ok(extra?: Env, args?: readonly string[]): Promise<CliResult>;
  /** Both sides hold `tree` and the pair has a snapshot of it (written on path1, then a run). */
  synced(tree: Record<string, string>): Promise<void>;
}

/** Registers beforeEach/afterEach hooks that give every test of the file its own `Sandbox` and remove it afterwards. */
export function useSandbox(prefix: string, options: SandboxPerTestOptions = {}): SandboxPerTest {
  let current: Sandbox | undefined;
  beforeEach(async () => {
    current = await makeSandbox(prefix);
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  const active = (): Sandbox => {
    if (!current) throw new Error(`useSandbox('${prefix}'): the sandbox exists only while a test runs`);
    return current;
  };
  // One object for the whole file (so tests can name it at the top level) that forwards to the running test's sandbox.
  const sandbox = new Proxy({} as Sandbox, { get: (_, key) => Reflect.get(active(), key) });

  async function ok(extra: Env = {}, args: readonly string[] = []): Promise<CliResult> {
    const result = await sandbox.run({ ...options.runEnv?.(), ...extra }, args);
    const detail = options.failureDetail ? `${dump(result)}\n${options.failureDetail()}` : dump(result);
    expect(result.exitCode, detail).toBe(0);
    return result;
  }

  async function synced(tree: Record<string, string>): Promise<void> {
    await writeTree(sandbox.path1, tree);
    await ok();
    expect(await readTree(sandbox.path2)).toEqual(tree);
  }

  return { sandbox, ok, synced };
}
