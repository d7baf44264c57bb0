/**
 * Dead man's switch pings in the healthchecks.io convention (also understood by many others):
 * `<url>/start` when a run starts, `<url>` when it succeeded, `<url>/fail` with the tail of the
 * run's log when it did not. A ping that cannot be delivered is logged and forgotten: monitoring
 * must never fail a run or stop the daemon.
 */
import type { Logger } from '../log.ts';
import { redact } from '../log.ts';
import type { RunRecord } from '../state/history.ts';

export interface DeliveryOptions {
  /** Per attempt. */
  readonly timeoutMs?: number;
  readonly attempts?: number;
  /** Waits before attempt 2, 3, ... (the last value repeats). */
  readonly backoffMs?: readonly number[];
  /** Aborting gives up at once (daemon shutdown). */
  readonly signal?: AbortSignal;
}

const DEFAULTS = { timeoutMs: 10_000, attempts: 3, backoffMs: [1_000, 3_000] } as const;

/**
 * Sends one request, retrying network errors, timeouts and 5xx/429 answers. Never throws:
 * returns whether it was delivered, and logs a warning when it was not.
 */
export async function deliver(
  what: string,
  url: string,
  init: { method: 'GET' | 'POST'; body?: string; contentType?: string; headers?: Record<string, string> },
  logger: Logger,
  options: DeliveryOptions = {},
): Promise<boolean> {
  const attempts = Math.max(1, options.attempts ?? DEFAULTS.attempts);
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
  const backoff = options.backoffMs ?? DEFAULTS.backoffMs;
  const target = redact(url);
  // fetch refuses credentials in the URL: send them as Basic authentication instead.
  const parsed = new URL(url);
  const headers: Record<string, string> = { ...init.headers };
  if (parsed.username || parsed.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}`;
    parsed.username = '';
    parsed.password = '';
  }
  if (init.body !== undefined) headers['content-type'] = init.contentType ?? 'text/plain; charset=utf-8';
  let lastProblem = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (options.signal?.aborted) {
      lastProblem = 'given up (shutting down)';
      break;
    }
    if (attempt > 1) {
      const wait = backoff[Math.min(attempt - 2, backoff.length - 1)] ?? 1_000;
      if (!(await sleep(wait, options.signal))) {
        lastProblem = `${lastProblem}; given up (shutting down)`;
        break;
      }
    }
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      const response = await fetch(parsed, {
        method: init.method,
        headers,
        ...(init.body !== undefined ? { body: init.body } : {}),
        signal: options.signal ? AbortSignal.any([timeout, options.signal]) : timeout,
        redirect: 'follow',
      });
      // Drain the body so the connection can be reused or closed.
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) {
        logger.debug({ url: target, attempt }, `${what} delivered`);
        return true;
      }
      lastProblem = `HTTP ${response.status}`;
      // A 4xx other than 429 will not get better by asking again (wrong URL, bad request).
      if (response.status < 500 && response.status !== 429) break;
    } catch (error) {
      lastProblem = timeout.aborted ? `no answer within ${timeoutMs} ms` : redact(describeFetchError(error));
    }
  }
  logger.warn({ url: target, attempts, problem: lastProblem }, `${what} could not be delivered; the run is not affected`);
  return false;
}

function describeFetchError(error: unknown): string {
  const e = error as Error & { cause?: { code?: string; message?: string; errors?: { code?: string; message?: string }[] } };
  if (e?.name === 'AbortError') return 'aborted';
  // Connection errors come as fetch's TypeError, caused by one error or several (one per address).
  const cause = e?.cause?.code ? e.cause : (e?.cause?.errors?.find((x) => x.code) ?? e?.cause);
  if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
  if (cause?.message) return `${e.message}: ${cause.message}`;
  return e?.message ?? String(error);
}

/** Resolves true after ms, false at once if the signal aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The pings of one run. `start()` does not wait; `finish()` waits for start to be sent first, so they arrive in order. */
export class RunPinger {
  private started: Promise<unknown> = Promise.resolve();
  private readonly url: string;
  private readonly logger: Logger;
  private readonly options: DeliveryOptions;

  constructor(url: string, logger: Logger, options: DeliveryOptions = {}) {
    this.url = url;
    this.logger = logger;
    this.options = options;
  }

  start(): void {
    this.started = deliver('start ping', withPath(this.url, '/start'), { method: 'GET' }, this.logger, this.options);
  }

  /**
   * Success -> `<url>`, with the summary as body; any other ending but a held lock -> `<url>/fail`
   * with the log tail. A run that found the lock held did not run: it is not reported either way
   * (the run holding the lock reports for the pair).
   */
  async finish(report: RunRecord, logTail: string): Promise<void> {
    await this.started;
    if (report.outcome === 'locked') return;
    if (report.outcome === 'success') {
      await deliver('success ping', withPath(this.url, ''), { method: 'POST', body: summaryLine(report) }, this.logger, this.options);
      return;
    }
    const body = capBytes(logTail || `${report.outcome}: ${report.message ?? ''}\n`, 10 * 1024);
    await deliver('failure ping', withPath(this.url, '/fail'), { method: 'POST', body }, this.logger, this.options);
  }
}

/** https://hc-ping.com/uuid/?x=1 + /start -> https://hc-ping.com/uuid/start?x=1 */
export function withPath(url: string, suffix: string): string {
  const parsed = new URL(url);
  parsed.pathname = parsed.pathname.replace(/\/+$/, '') + suffix;
  return parsed.toString();
}

export function summaryLine(report: RunRecord): string {
  const c = report.counts;
  return (
    `run ${report.outcome}${report.dryRun ? ' (dry run)' : ''}${report.resync ? ' (resync)' : ''} in ${(report.durationMs / 1000).toFixed(1)}s: ` +
    `${c?.copiesToPath2 ?? 0} copied to path2, ${c?.copiesToPath1 ?? 0} copied to path1, ` +
    `${(c?.deletesOnPath1 ?? 0) + (c?.deletesOnPath2 ?? 0)} deleted, ${c?.conflicts ?? 0} conflicts\n`
  );
}

/** Keeps the last maxBytes bytes (the end of a log matters most), on a line boundary when possible. */
export function capBytes(text: string, maxBytes: number): string {
  const buffer = Buffer.from(text);
  if (buffer.length <= maxBytes) return text;
  const tail = buffer.subarray(buffer.length - maxBytes).toString('utf8');
  const newline = tail.indexOf('\n');
  return newline >= 0 && newline < tail.length - 1 ? tail.slice(newline + 1) : tail.replace(/^\uFFFD+/, '');
}
