import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { LogConfig } from './config.ts';

export type { Logger };

/**
 * Connection strings may carry credentials (":sftp,user=me,pass=xyz:path", "https://user:pw@host").
 * Anything that reaches a log line goes through this first.
 */
export function redact(text: string): string {
  return text
    .replace(/((?:pass|password|key|secret|token|client_secret|access_key_id|secret_access_key|account|session_token|sas_url)\s*=\s*)("[^"]*"|'[^']*'|[^,:\s]*)/gi, '$1***')
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@\s/]*@/gi, '$1***@');
}

/**
 * The last lines a logger wrote, kept in memory so a finished run can send its own log (a
 * healthchecks.io failure ping carries it). Lines are numbered: `mark()` before a run, then
 * `since(mark)` gives that run's lines only.
 */
export class LogTail {
  private readonly lines: string[] = [];
  /** Sequence number of lines[0]. */
  private first = 0;
  private bytes = 0;
  private readonly maxLines: number;
  private readonly maxBytes: number;

  constructor(maxLines = 1000, maxBytes = 512 * 1024) {
    this.maxLines = maxLines;
    this.maxBytes = maxBytes;
  }

  push(line: string): void {
    const text = line.endsWith('\n') ? line.slice(0, -1) : line;
    this.lines.push(text);
    this.bytes += text.length;
    while (this.lines.length > this.maxLines || (this.bytes > this.maxBytes && this.lines.length > 1)) {
      this.bytes -= this.lines.shift()!.length;
      this.first++;
    }
  }

  /** The number the next line will get. */
  mark(): number {
    return this.first + this.lines.length;
  }

  /**
   * The lines written since `mark` (all kept lines without it), newest last, readable rather than
   * JSON, at most `maxLines` lines and `maxBytes` bytes (the newest lines win).
   */
  since(mark = 0, limits: { maxLines?: number; maxBytes?: number; pair?: string } = {}): string {
    const maxLines = limits.maxLines ?? 100;
    const maxBytes = limits.maxBytes ?? 10 * 1024;
    const from = Math.max(0, mark - this.first);
    const pair = limits.pair;
    // With `pair`: that pair's lines only (a daemon's pairs log into one stream at the same time).
    const own = pair === undefined ? this.lines.slice(from) : this.lines.slice(from).filter((line) => line.includes(`"pair":${JSON.stringify(pair)}`));
    const selected = own.slice(Math.max(0, own.length - maxLines));
    const out: string[] = [];
    let size = 0;
    for (let i = selected.length - 1; i >= 0; i--) {
      const line = humanLine(selected[i]!);
      const lineBytes = Buffer.byteLength(line) + 1;
      if (size + lineBytes > maxBytes) {
        if (out.length === 0) out.push(truncateBytes(line, maxBytes - 1));
        break;
      }
      out.push(line);
      size += lineBytes;
    }
    return out.reverse().join('\n') + (out.length > 0 ? '\n' : '');
  }
}

/** '{"level":"info","time":"...","msg":"run success","x":1}' -> '2024-... INFO run success {"x":1}' */
function humanLine(line: string): string {
  try {
    const { level, time, msg, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
    return `${String(time ?? '')} ${String(level ?? '').toUpperCase()} ${String(msg ?? '')}${extra}`.trim();
  } catch {
    return line;
  }
}

function truncateBytes(text: string, maxBytes: number): string {
  const buffer = Buffer.from(text);
  if (buffer.length <= maxBytes) return text;
  return buffer.subarray(buffer.length - maxBytes).toString('utf8').replace(/^\uFFFD+/, '');
}

/** What a logger's tail offers: the root's, or a pair's view of it (pairLogger). */
export type LogTailView = Pick<LogTail, 'mark' | 'since'>;

const tails = new WeakMap<Logger, LogTailView>();

/** The in-memory tail of a logger made by createLogger or pairLogger (undefined for other loggers). */
export function logTailOf(logger: Logger): LogTailView | undefined {
  return tails.get(logger);
}

/** A child logger for one pair (`pair` in every line) whose tail holds that pair's lines only. */
export function pairLogger(logger: Logger, pair: string): Logger {
  const child = logger.child({ pair });
  const tail = tails.get(logger);
  if (tail) tails.set(child, { mark: () => tail.mark(), since: (mark, limits = {}) => tail.since(mark, { ...limits, pair }) });
  return child;
}

/**
 * `through`: the stream every line goes to instead of stdout, in either format (pretty lines are
 * formatted in this process then): the terminal's progress line writes the log above itself.
 */
export function createLogger(config: LogConfig, destination?: NodeJS.WritableStream, output: { through?: NodeJS.WritableStream } = {}): Logger {
  const tail = new LogTail();
  const options = {
    level: config.level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    // Every line written (by this logger and its children) is also kept in memory.
    hooks: {
      streamWrite: (line: string) => {
        tail.push(line);
        return line;
      },
    },
  };
  let logger: Logger;
  const pretty = { colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,run,pair' };
  if (output.through) {
    logger = pino(options, (config.format === 'pretty' ? loadPinoPretty()({ ...pretty, destination: output.through, sync: true }) : output.through) as pino.DestinationStream);
  } else if (config.format === 'pretty' && !destination) {
    logger = pino({ ...options, transport: { target: 'pino-pretty', options: pretty } });
  } else {
    logger = destination ? pino(options, destination as pino.DestinationStream) : pino(options, stdoutDestination());
  }
  tails.set(logger, tail);
  return logger;
}

/** pino-pretty only when lines are pretty: loading it costs every JSON-logging run (the image's) ~30 ms. */
const loadPinoPretty = (): typeof PinoPretty => createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;

/** A stream whose `write` returns false once it holds more than it should (sonic-boom, a Writable). */
export interface BufferingStream {
  write(line: string): boolean;
  once(event: 'drain' | 'error' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'error' | 'close', listener: () => void): unknown;
}

/** Ends the wait for a full stream: 'error' and 'close' too, so a stdout that went away never holds a run. */
const BACKLOG_ENDS = ['drain', 'error', 'close'] as const;

/**
 * Wraps `stream.write` to note when it reports itself full (pino ignores what `write` returns).
 * The function returned resolves once the stream has drained since then, at once if it never
 * filled.
 */
export function trackBacklog(stream: BufferingStream): () => Promise<void> {
  let backlog: Promise<void> | undefined;
  const write = stream.write.bind(stream);
  stream.write = (line: string): boolean => {
    const room = write(line);
    backlog ??= room
      ? undefined
      : new Promise((resolve) => {
          const ended = () => {
            for (const event of BACKLOG_ENDS) stream.off(event, ended);
            backlog = undefined;
            resolve();
          };
          for (const event of BACKLOG_ENDS) stream.once(event, ended);
        });
    return room;
  };
  return () => backlog ?? Promise.resolve();
}

let stdoutCaughtUp = (): Promise<void> => Promise.resolve();

/**
 * Resolves once the log written to stdout has caught up (at once when it has, or when the log goes
 * elsewhere). A loop that logs a line for each of a million actions never lets the asynchronous
 * writes run: every line would be held in memory until the loop ends (~300 MB at a million,
 * measured). Such a loop waits on this now and then.
 */
export function logCaughtUp(): Promise<void> {
  return stdoutCaughtUp();
}

/**
 * stdout, written asynchronously. A synchronous write that finds the pipe full (a container
 * runtime or a parent reading in bursts, while a run logs 10,000 moves) sleeps 100 ms in
 * sonic-boom and retries; a run spent seconds so. Lines still buffered at exit are written then.
 */
function stdoutDestination(): pino.DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 0 });
  stdoutCaughtUp = trackBacklog(destination);
  process.once('exit', () => {
    try {
      destination.flushSync();
    } catch {
      // stdout is gone (EPIPE) or still full: nothing more can be done at exit.
    }
  });
  return destination;
}
