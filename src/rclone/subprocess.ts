/**
 * Starting rclone and waiting for it: the little of a process runner the rclone layer needs, over
 * node:child_process. (execa did this before; it loaded 111 modules, ~0.1 s of CPU and ~20 MB at
 * every start, on a run that often lasts two seconds.)
 *
 * A child ends one way: `done` settles once the process has exited and its pipes are drained. It
 * resolves only for exit code 0; anything else (a non-zero exit, a signal, a binary that cannot be
 * started, a cancellation) rejects with a SubprocessError that keeps what happened.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

export interface SpawnOptions {
  /** The child's whole environment (not added to ours). */
  readonly env: NodeJS.ProcessEnv;
  /**
   * Where stdout goes: kept and returned as text by `done`; a pipe the caller reads (`stdout`);
   * nowhere; or an open file descriptor the child writes into directly.
   */
  readonly stdout: 'collect' | 'stream' | 'ignore' | { readonly fd: number };
  /** Aborting it stops the child (as `kill()` does) and the child's failure says it was cancelled. */
  readonly signal?: AbortSignal;
  /** After SIGTERM, how long a child may take to end before it gets SIGKILL. */
  readonly forceKillAfterMs?: number;
  /** The child is stopped after this long. */
  readonly timeoutMs?: number;
}

export interface Completed {
  /** The collected stdout without its final newline ('' when not collected). */
  readonly stdout: string;
}

export interface Child {
  readonly done: Promise<Completed>;
  /** The stdout pipe, with `stdout: 'stream'`. */
  readonly stdout: Readable | null;
  /** stderr, line by line (without line ends); read it, or the child may block on a full pipe. */
  readonly stderrLines: AsyncIterable<string>;
  /** Asks the child to end (SIGTERM by default), and kills it if it has not after `forceKillAfterMs`. */
  kill(signal?: NodeJS.Signals): void;
}

export class SubprocessError extends Error {
  /** The exit code; undefined when the child was ended by a signal or never started. */
  readonly exitCode: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  /** The spawn error's code ('ENOENT': no such binary). */
  readonly code: string | undefined;
  readonly isCanceled: boolean;
  readonly timedOut: boolean;
  constructor(message: string, details: { exitCode?: number | undefined; signal?: NodeJS.Signals | undefined; code?: string | undefined; isCanceled: boolean; timedOut: boolean; cause?: unknown }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'SubprocessError';
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.code = details.code;
    this.isCanceled = details.isCanceled;
    this.timedOut = details.timedOut;
  }
}

export function spawnChild(file: string, args: readonly string[], options: SpawnOptions): Child {
  const { signal } = options;
  const stdout = typeof options.stdout === 'object' ? options.stdout.fd : options.stdout === 'ignore' ? 'ignore' : 'pipe';
  const child = spawn(file, args, { env: options.env, stdio: ['ignore', stdout, 'pipe'] });
  const collected: Buffer[] = [];
  if (options.stdout === 'collect') child.stdout!.on('data', (chunk: Buffer) => collected.push(chunk));

  let cancelled = false;
  let timedOut = false;
  let exited = false;
  let forceKill: NodeJS.Timeout | undefined;
  const kill = (killSignal: NodeJS.Signals = 'SIGTERM'): void => {
    if (exited) return;
    child.kill(killSignal);
    if (killSignal !== 'SIGKILL' && options.forceKillAfterMs !== undefined && !forceKill) {
      forceKill = setTimeout(() => exited || child.kill('SIGKILL'), options.forceKillAfterMs);
      forceKill.unref();
    }
  };
  const onAbort = (): void => {
    cancelled = true;
    kill();
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const timeout =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          kill();
        }, options.timeoutMs);

  const command = [file, ...args].join(' ');
  const done = new Promise<Completed>((resolve, reject) => {
    const finish = (outcome: { exitCode: number | null; signal: NodeJS.Signals | null } | { error: NodeJS.ErrnoException }): void => {
      if (exited) return;
      exited = true;
      clearTimeout(forceKill);
      clearTimeout(timeout);
      signal?.removeEventListener('abort', onAbort);
      if ('error' in outcome) {
        const { error } = outcome;
        reject(new SubprocessError(`${command} could not be started: ${error.message}`, { code: error.code, isCanceled: cancelled, timedOut, cause: error }));
      } else if (outcome.exitCode === 0 && !cancelled && !timedOut) {
        const text = Buffer.concat(collected).toString('utf8');
        resolve({ stdout: text.endsWith('\n') ? text.slice(0, text.endsWith('\r\n') ? -2 : -1) : text });
      } else {
        const how = cancelled ? 'was cancelled' : timedOut ? `timed out after ${options.timeoutMs} ms` : outcome.signal ? `was killed with ${outcome.signal}` : `failed with exit code ${outcome.exitCode}`;
        reject(new SubprocessError(`${command} ${how}`, { exitCode: outcome.exitCode ?? undefined, signal: outcome.signal ?? undefined, isCanceled: cancelled, timedOut }));
      }
    };
    child.once('error', (error) => finish({ error }));
    child.once('close', (exitCode, exitSignal) => finish({ exitCode, signal: exitSignal }));
  });
  // Whoever started the child awaits `done`; a rejection nobody waits for must not end the process.
  done.catch(() => {});

  return {
    done,
    stdout: options.stdout === 'stream' ? child.stdout : null,
    stderrLines: linesOf(child.stderr!),
    kill,
  };
}

/** A stream's text, line by line; a last line without its newline is given too. */
async function* linesOf(stream: Readable): AsyncGenerator<string> {
  stream.setEncoding('utf8');
  let partial = '';
  for await (const chunk of stream as AsyncIterable<string>) {
    let start = 0;
    for (let end = chunk.indexOf('\n'); end !== -1; end = chunk.indexOf('\n', start)) {
      const line = partial + chunk.slice(start, end);
      partial = '';
      yield line.endsWith('\r') ? line.slice(0, -1) : line;
      start = end + 1;
    }
    partial += chunk.slice(start);
  }
  if (partial) yield partial.endsWith('\r') ? partial.slice(0, -1) : partial;
}
