import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { notificationFor, notifyRun } from '../../src/appliance/notify.ts';
import { capBytes, deliver, RunPinger, withPath } from '../../src/appliance/ping.ts';
import type { Outcome } from '../../src/errors.ts';
import { createLogger, LogTail, logTailOf, type Logger } from '../../src/log.ts';
import type { RunRecord } from '../../src/state/history.ts';
import { runRecord } from '../helpers/records.ts';

interface Received {
  method: string;
  path: string;
  body: string;
  contentType: string | undefined;
}

/** A webhook receiver that answers each request with the next status from `plan` (then 200), or never answers ('hang'). */
class Receiver {
  readonly requests: Received[] = [];
  readonly authorizations: (string | undefined)[] = [];
  plan: (number | 'hang')[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request: IncomingMessage, response) => {
      let body = '';
      request.on('data', (chunk) => (body += String(chunk)));
      request.on('end', () => {
        this.authorizations.push(request.headers.authorization);
        this.requests.push({ method: request.method ?? '', path: request.url ?? '', body, contentType: request.headers['content-type'] });
        const next = this.plan.shift() ?? 200;
        if (next === 'hang') return;
        response.writeHead(next).end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  reset(): void {
    this.requests.length = 0;
    this.authorizations.length = 0;
    this.plan = [];
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function capturingLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  let text = '';
  const logger = createLogger({ level: 'debug', format: 'json' }, new Writable({ write: (chunk, _e, cb) => ((text += String(chunk)), cb()) }));
  return { logger, lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const report = (outcome: Outcome, extra: Partial<RunRecord> = {}): RunRecord =>
  runRecord(outcome, { endedAt: '2025-01-01T00:00:05.000Z', runId: 'abc', pair: 'pair-1' }, extra);

// Generous enough for a loaded machine's first request; the 'hang' case waits it out once.
const fast = { timeoutMs: 2_000, backoffMs: [20, 40] };
const receiver = new Receiver();
/** A port nothing listens on (any more). */
let deadUrl = '';
beforeAll(async () => {
  await receiver.start();
  const dead = new Receiver();
  await dead.start();
  await dead.stop();
  deadUrl = dead.url;
});
afterAll(() => receiver.stop());
afterEach(() => receiver.reset());

describe('deliver', () => {
  it('delivers at the first attempt', async () => {
    const { logger } = capturingLogger();
    expect(await deliver('ping', `${receiver.url}/x`, { method: 'GET' }, logger, fast)).toBe(true);
    expect(receiver.requests).toMatchObject([{ method: 'GET', path: '/x' }]);
  });

  it('retries 5xx and timeouts, up to 3 attempts', async () => {
    const { logger } = capturingLogger();
    receiver.plan = [503, 'hang'];
    expect(await deliver('ping', `${receiver.url}/x`, { method: 'POST', body: 'b' }, logger, fast)).toBe(true);
    expect(receiver.requests.map((r) => r.body)).toEqual(['b', 'b', 'b']);
  });

  it('gives up after 3 failed attempts with a warning, without throwing', async () => {
    const { logger, lines } = capturingLogger();
    receiver.plan = [500, 502, 500, 200];
    expect(await deliver('failure ping', `${receiver.url}/x`, { method: 'GET' }, logger, fast)).toBe(false);
    expect(receiver.requests).toHaveLength(3);
    const warning = lines().find((l) => l.level === 'warn');
    expect(warning).toMatchObject({ msg: 'failure ping could not be delivered; the run is not affected', problem: 'HTTP 500', attempts: 3 });
  });

  it('does not retry a 4xx answer (wrong URL)', async () => {
    const { logger } = capturingLogger();
    receiver.plan = [404];
    expect(await deliver('ping', `${receiver.url}/x`, { method: 'GET' }, logger, fast)).toBe(false);
    expect(receiver.requests).toHaveLength(1);
  });

  it('survives a dead receiver', async () => {
    const { logger, lines } = capturingLogger();
    const started = Date.now();
    expect(await deliver('ping', `${deadUrl}/x`, { method: 'GET' }, logger, fast)).toBe(false);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(lines().find((l) => l.level === 'warn')?.problem).toMatch(/ECONNREFUSED/);
  });

  it('stops retrying when its signal aborts', async () => {
    const { logger } = capturingLogger();
    receiver.plan = [500, 500, 500];
    const controller = new AbortController();
    const pending = deliver('ping', `${receiver.url}/x`, { method: 'GET' }, logger, { timeoutMs: 300, backoffMs: [5_000], signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    expect(await pending).toBe(false);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(receiver.requests).toHaveLength(1);
  });

  it('sends credentials in the URL as Basic authentication and never logs them', async () => {
    const { logger, lines } = capturingLogger();
    const url = receiver.url.replace('http://', 'http://user:hunter2@');
    receiver.plan = [400];
    expect(await deliver('ping', url, { method: 'GET' }, logger, fast)).toBe(false);
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.authorizations[0]).toBe(`Basic ${Buffer.from('user:hunter2').toString('base64')}`);
    expect(JSON.stringify(lines())).not.toContain('hunter2');
  });
});

describe('RunPinger (healthchecks.io convention)', () => {
  it('pings /start, then the URL itself with a summary on success', async () => {
    const { logger } = capturingLogger();
    const pinger = new RunPinger(`${receiver.url}/ping/uuid/`, logger, fast);
    pinger.start();
    await pinger.finish(report('success', { counts: { copiesToPath1: 1, copiesToPath2: 2, deletesOnPath1: 0, deletesOnPath2: 3, movesOnPath1: 0, movesOnPath2: 0, conflicts: 0, bytesToPath1: 0, bytesToPath2: 0 } }), 'log');
    expect(receiver.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /ping/uuid/start', 'POST /ping/uuid']);
    expect(receiver.requests[1]!.body).toBe('run success in 5.0s: 2 copied to path2, 1 copied to path1, 3 deleted, 0 conflicts\n');
  });

  it('pings /fail with the log tail on failure, safety stop and cancellation', async () => {
    const { logger } = capturingLogger();
    for (const outcome of ['failed', 'safety-stop', 'cancelled', 'usage'] as const) {
      receiver.reset();
      const pinger = new RunPinger(`${receiver.url}/hc`, logger, fast);
      pinger.start();
      await pinger.finish(report(outcome, { message: 'why' }), 'line 1\nline 2\n');
      expect(receiver.requests.map((r) => `${r.method} ${r.path} ${r.body}`)).toEqual(['GET /hc/start ', 'POST /hc/fail line 1\nline 2\n']);
    }
  });

  it('caps the failure body at 10 kB and falls back to the message without a log', async () => {
    const { logger } = capturingLogger();
    const pinger = new RunPinger(`${receiver.url}/hc`, logger, fast);
    const long = Array.from({ length: 2_000 }, (_, i) => `line ${i} ${'x'.repeat(20)}`).join('\n') + '\n';
    await pinger.finish(report('failed', { message: 'm' }), long);
    const body = receiver.requests[0]!.body;
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(10 * 1024);
    expect(body.endsWith('line 1999 xxxxxxxxxxxxxxxxxxxx\n')).toBe(true);
    expect(body.startsWith('line ')).toBe(true);
    receiver.reset();
    await pinger.finish(report('failed', { message: 'rclone failed' }), '');
    expect(receiver.requests[0]!.body).toBe('failed: rclone failed\n');
  });

  it('keeps a query string after the suffix', () => {
    expect(withPath('https://hc-ping.com/key/backup?create=1', '/start')).toBe('https://hc-ping.com/key/backup/start?create=1');
    expect(withPath('https://hc-ping.com/uuid/', '')).toBe('https://hc-ping.com/uuid');
  });

  it('reports nothing but the start for a run that found the lock held', async () => {
    const { logger } = capturingLogger();
    const pinger = new RunPinger(`${receiver.url}/hc`, logger, fast);
    pinger.start();
    await pinger.finish(report('locked'), '');
    expect(receiver.requests.map((r) => r.path)).toEqual(['/hc/start']);
  });

  it('a dead receiver does not fail anything', async () => {
    const { logger, lines } = capturingLogger();
    const pinger = new RunPinger(`${deadUrl}/hc`, logger, fast);
    pinger.start();
    await expect(pinger.finish(report('failed'), 'x')).resolves.toBeUndefined();
    expect(lines().filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'start ping could not be delivered; the run is not affected',
      'failure ping could not be delivered; the run is not affected',
    ]);
  });
});

describe('notifications', () => {
  const c = { copiesToPath1: 0, copiesToPath2: 1, deletesOnPath1: 0, deletesOnPath2: 0, movesOnPath1: 0, movesOnPath2: 0, conflicts: 2, bytesToPath1: 0, bytesToPath2: 5 };
  it('chooses the event', () => {
    expect(notificationFor(report('success'))).toBeUndefined();
    expect(notificationFor(report('success', { counts: { ...c, conflicts: 0 } }))).toBeUndefined();
    expect(notificationFor(report('locked'))).toBeUndefined();
    expect(notificationFor(report('success', { counts: c }))).toMatchObject({ event: 'conflicts', message: '2 files changed on both sides; both versions were kept as conflict copies' });
    expect(notificationFor(report('safety-stop', { message: 'would delete 90%' }))).toMatchObject({ event: 'safety-stop', message: 'would delete 90%', exitCode: 3 });
    for (const outcome of ['failed', 'cancelled', 'usage'] as const) expect(notificationFor(report(outcome, { message: 'm' }))?.event).toBe('failure');
  });

  it('posts the JSON webhook', async () => {
    const { logger } = capturingLogger();
    expect(await notifyRun(`${receiver.url}/hook`, report('failed', { message: 'rclone lsjson failed', counts: c }), logger, fast)).toBe(true);
    expect(receiver.requests).toHaveLength(1);
    const got = receiver.requests[0]!;
    expect(got).toMatchObject({ method: 'POST', path: '/hook', contentType: 'application/json' });
    expect(JSON.parse(got.body)).toEqual({
      event: 'failure',
      pair: 'pair-1',
      outcome: 'failed',
      exitCode: 1,
      counts: c,
      message: 'rclone lsjson failed',
      startedAt: '2025-01-01T00:00:00.000Z',
      endedAt: '2025-01-01T00:00:05.000Z',
    });
  });

  it('sends nothing for a quiet success, retries, and survives a dead receiver', async () => {
    const { logger } = capturingLogger();
    expect(await notifyRun(`${receiver.url}/hook`, report('success'), logger, fast)).toBe(true);
    expect(receiver.requests).toHaveLength(0);
    receiver.plan = [500];
    expect(await notifyRun(`${receiver.url}/hook`, report('safety-stop', { message: 'm' }), logger, fast)).toBe(true);
    expect(receiver.requests).toHaveLength(2);
    expect(await notifyRun(`${deadUrl}/hook`, report('failed'), logger, fast)).toBe(false);
  });
});

describe('log tail', () => {
  it('keeps the lines of a logger and its children, per run', () => {
    const { logger } = capturingLogger();
    const tail = logTailOf(logger)!;
    logger.info('before the run');
    const mark = tail.mark();
    logger.child({ run: 'r1' }).warn({ path: 'a.txt' }, 'something odd');
    logger.error('it failed');
    const text = tail.since(mark);
    expect(text).not.toContain('before the run');
    expect(text).toMatch(/^\S+Z WARN something odd \{"run":"r1","path":"a.txt"\}\n\S+Z ERROR it failed\n$/);
  });

  it('keeps the newest lines within the line and byte limits', () => {
    const tail = new LogTail(50, 1_000_000);
    for (let i = 0; i < 80; i++) tail.push(JSON.stringify({ level: 'info', time: 't', msg: `m${i}` }) + '\n');
    expect(tail.since(0, { maxLines: 3 })).toBe('t INFO m77\nt INFO m78\nt INFO m79\n');
    // Lines dropped from memory are simply not there.
    expect(tail.since(0, { maxLines: 1000 }).split('\n')[0]).toBe('t INFO m30');
    expect(Buffer.byteLength(tail.since(0, { maxLines: 1000, maxBytes: 25 }))).toBeLessThanOrEqual(25);
    expect(tail.since(0, { maxLines: 1000, maxBytes: 25 })).toBe('t INFO m78\nt INFO m79\n');
    expect(tail.since(tail.mark())).toBe('');
  });

  it('capBytes keeps the end on a line boundary', () => {
    expect(capBytes('aaa\nbbb\nccc\n', 9)).toBe('bbb\nccc\n');
    expect(capBytes('short', 100)).toBe('short');
  });
});
