/**
 * Processes the tests start and wait on: the CLI (`node src/cli.ts`, to completion or watched while
 * it runs), helper servers (stopped with `stopChild`), and polling for a state to come about.
 *
 * The CLI always runs with a clean environment (`cleanEnv`): nothing of the test process's own
 * SYNC_*, LOG_* or RCLONE_* settings may change what a test observes.
 */
import { execa, type Result, type ResultPromise } from 'execa';
import { createConnection, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseLogLines, type LogLine } from './logs.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(REPO_ROOT, 'src', 'cli.ts');

export type Env = Record<string, string | undefined>;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Running the CLI
// ---------------------------------------------------------------------------------------------

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

/** Options every CLI process gets: the clean environment and no stdin; never rejects on a non-zero exit. */
function cliProcessOptions(env: Env, cwd: string, timeoutMs: number) {
  return { env: cleanEnv(env), extendEnv: false, reject: false, stdin: 'ignore', cwd, timeout: timeoutMs } as const;
}

/** A finished CLI process as the tests read it. */
function cliResultOf(result: Pick<Result, 'exitCode' | 'stdout' | 'stderr'>, startedAt: number, stdout = String(result.stdout ?? '')): CliResult {
  const endedAt = Date.now();
  return { exitCode: result.exitCode ?? -1, stdout, stderr: String(result.stderr ?? ''), logs: parseLogLines(stdout), durationMs: endedAt - startedAt, endedAt };
}

/**
 * Runs `command ...args` (by default `node src/cli.ts ...args`) to completion. Never rejects on a
 * non-zero exit. `command` lets a wrapper (setpriv) start the CLI.
 */
export async function runCli(
  args: readonly string[],
  env: Env,
  options: { timeoutMs?: number; cwd?: string; command?: readonly string[] } = {},
): Promise<CliResult> {
  const startedAt = Date.now();
  const [file, ...prefix] = options.command ?? [process.execPath];
  const result = await execa(file!, [...prefix, ...(options.command ? [process.execPath] : []), CLI, ...args], cliProcessOptions(env, options.cwd ?? REPO_ROOT, options.timeoutMs ?? 60_000));
  return cliResultOf(result, startedAt);
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
  const subprocess: ResultPromise = execa(process.execPath, [CLI, ...args], { ...cliProcessOptions(env, REPO_ROOT, 120_000), detached: options.detached ?? false });
  let stdout = '';
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
  const result = (async (): Promise<CliResult> => {
    const finished = await subprocess;
    for (const waiter of waiters) waiter.resolve(undefined);
    waiters.clear();
    return cliResultOf(finished, startedAt, stdout);
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

/** A readable dump of a result for assertion messages. */
export function dump(result: CliResult): string {
  return `exit ${result.exitCode}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

// ---------------------------------------------------------------------------------------------
// Helper servers: their ports and their end
// ---------------------------------------------------------------------------------------------

/**
 * Asks `child` to stop (SIGTERM), kills it (SIGKILL) if it is still up after `killAfterMs`, and
 * waits for `ended`, the promise that settles when it has exited.
 */
export async function stopChild(child: { kill(signal: NodeJS.Signals): boolean }, ended: Promise<unknown>, killAfterMs = 3000): Promise<void> {
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  try {
    await ended;
  } finally {
    clearTimeout(timer);
  }
}

/** A port nobody listens on right now (the OS picks it, we release it). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export function canConnect(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolveConnected) => {
    const socket = createConnection({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolveConnected(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

// ---------------------------------------------------------------------------------------------
// Waiting for a state
// ---------------------------------------------------------------------------------------------

export function describeError(error: unknown): string {
  const e = error as Error & { json?: { message?: string } };
  return e?.json?.message ?? e?.message ?? String(error);
}

/**
 * Polls `check` until it returns something other than undefined, null or false; an error it throws
 * counts as "not yet" (and is named if the time runs out). `details` adds to the timeout's message.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  options: { timeoutMs?: number; intervalMs?: number; details?: () => Promise<string> | string } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const details = options.details ? `\n${await Promise.resolve().then(options.details).catch((e: unknown) => String(e))}` : '';
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${lastError ? ` (last error: ${describeError(lastError)})` : ''}${details}`);
    }
    await sleep(options.intervalMs ?? 500);
  }
}
