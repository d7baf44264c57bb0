/**
 * The daemon as users run it: `node src/cli.ts daemon` with real rclone on temporary folders,
 * its HTTP endpoints, healthchecks-style pings to a local receiver, `rclonesync health`, a remote
 * that breaks and recovers, and SIGTERM in the middle of a slow transfer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/state/history.ts';
import { type LogLine } from '../helpers/logs.ts';
import { cleanEnv, CLI, freePort } from '../helpers/processes.ts';
import { listFiles } from '../helpers/trees.ts';

/** The parent's environment without any setting that could leak into the children. */
function baseEnv(): NodeJS.ProcessEnv {
  return cleanEnv({ LOG_FORMAT: 'json', LOG_LEVEL: 'info', TZ: 'UTC' });
}

class Daemon {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  private readonly child: ChildProcess;

  constructor(env: NodeJS.ProcessEnv, command = 'daemon') {
    this.child = spawn(process.execPath, [CLI, command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffer = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ level: 'raw', msg: line });
        }
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  has(msg: string | RegExp): boolean {
    return this.lines.some((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));
  }

  /** For failure messages: the log so far. */
  dump(): string {
    return `${this.lines.map((l) => JSON.stringify(l)).join('\n')}\n${this.stderr.join('')}`;
  }
}

const running: Daemon[] = [];
function startDaemon(env: NodeJS.ProcessEnv, command = 'daemon'): Daemon {
  const daemon = new Daemon(env, command);
  running.push(daemon);
  return daemon;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, context?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}${context ? `\n${context()}` : ''}`);
}

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Receives pings and webhooks. */
class Receiver {
  readonly requests: { method: string; path: string; body: string; at: number }[] = [];
  private server!: Server;
  url = '';
  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      let body = '';
      request.on('data', (c: Buffer) => (body += c.toString()));
      request.on('end', () => {
        this.requests.push({ method: request.method ?? '', path: request.url ?? '', body, at: Date.now() });
        response.end('OK');
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  paths(): string[] {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(match[3]);
  }
  return undefined;
}

async function pairDir(stateDir: string): Promise<string> {
  const entries = (await readdir(stateDir, { withFileTypes: true })).filter((e) => e.isDirectory());
  expect(entries).toHaveLength(1);
  return join(stateDir, entries[0]!.name);
}

async function history(stateDir: string): Promise<RunRecord[]> {
  const text = await readFile(join(await pairDir(stateDir), 'history.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as RunRecord);
}

/** rclone reads its config at every start: replace it atomically so no run sees half a file. */
async function writeConfig(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

let root: string;
const receiver = new Receiver();

/** Folders a/ (path1) and b/ (path2) under root/<name>, the pair's state folder, and the environment of a run of that pair. */
async function makePair(name: string) {
  const dir = join(root, name);
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const stateDir = join(dir, 'state');
  await mkdir(a, { recursive: true });
  await mkdir(b);
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...baseEnv(), SYNC_PATH1: a, SYNC_PATH2: b, SYNC_STATE_DIR: stateDir, ...extra });
  return { dir, a, b, stateDir, env };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rclonesync-daemon-'));
  await receiver.start();
});
afterEach(async () => {
  // A failed test must not leave a daemon behind.
  for (const daemon of running.splice(0)) {
    if (daemon.alive) {
      daemon.kill('SIGKILL');
      await daemon.exited;
    }
  }
});
afterAll(async () => {
  await receiver.stop();
  await rm(root, { recursive: true, force: true });
});

describe('rclonesync daemon', () => {
  it('without a run on start: waits for the schedule, is unhealthy, and stops at once on SIGTERM', async () => {
    const pair = await makePair('idle');
    const port = await freePort();
    const env = pair.env({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RUN_ON_START: 'false', SYNC_HTTP_PORT: String(port) });
    const daemon = startDaemon(env);
    const next = await waitFor('the next-run log line', () => daemon.lines.find((l) => l.msg.startsWith('next run at')), 10_000, () => daemon.dump());
    expect(new Date(next.nextRun as string).toISOString()).toMatch(/^\d{4}-01-01T00:00:00\.000Z$/);
    const health = await waitFor('/healthz', () => getJson(`http://127.0.0.1:${port}/healthz`));
    expect(health.status).toBe(503);
    expect(health.body.reason).toBe('no run has finished yet');
    const status = await getJson(`http://127.0.0.1:${port}/status`);
    expect(status.body).toMatchObject({ running: false, current: null, schedule: '0 0 1 1 *', timezone: 'UTC', runs: [] });
    expect(Date.parse(status.body.nextRun as string)).toBeGreaterThan(Date.now());

    const check = await cli(['health'], env);
    expect(check.code).toBe(1);
    expect(check.stdout).toBe('unhealthy: no run has finished yet\n');

    await new Promise((r) => setTimeout(r, 1_000));
    expect(daemon.has(/^starting/)).toBe(false);

    const sent = Date.now();
    daemon.kill('SIGTERM');
    const exit = await daemon.exited;
    expect(exit.code).toBe(0);
    expect(exit.at - sent).toBeLessThan(2_000);
    expect(daemon.has('stopping (no run in progress)')).toBe(true);
    expect(daemon.has('daemon stopped')).toBe(true);
  });

  it('refuses to start (exit 2) when its HTTP port is taken', async () => {
    const blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '0.0.0.0', r));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const dir = join(root, 'port');
      await mkdir(join(dir, 'a'), { recursive: true });
      await mkdir(join(dir, 'b'), { recursive: true });
      const result = await cli(['daemon'], { ...baseEnv(), SYNC_PATH1: join(dir, 'a'), SYNC_PATH2: join(dir, 'b'), SYNC_STATE_DIR: join(dir, 'state'), SYNC_HTTP_PORT: String(port) });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`rclonesync: SYNC_HTTP_PORT (--http-port): cannot listen on port ${port} (EADDRINUSE: another program uses it)\n`);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it('syncs on schedule, reports over HTTP and pings; a broken remote keeps the loop alive and unhealthy until fixed', async () => {
    const { dir, a, b, env: pairEnv } = await makePair('main');
    await writeFile(join(a, 'hello.txt'), 'hello from path1\n');
    // path2 is a remote defined in an rclone.conf we can break and repair between runs.
    const conf = join(dir, 'rclone.conf');
    const good = `[side2]\ntype = alias\nremote = ${b}\n`;
    await writeConfig(conf, good);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = pairEnv({
      RCLONE_CONFIG: conf,
      SYNC_PATH2: 'side2:',
      SYNC_SCHEDULE: '* * * * * *',
      SYNC_HEALTH_MAX_AGE: '60s',
      SYNC_HTTP_PORT: String(port),
      SYNC_PING_URL: `${receiver.url}/ping/main`,
      SYNC_NOTIFY_URL: `${receiver.url}/notify/main`,
    });
    const startedAt = Date.now();
    const daemon = startDaemon(env);
    const dump = () => daemon.dump();

    // The first run (on start) copies the file; /healthz turns 200.
    await waitFor('/healthz 200', async () => (await fetch(`${base}/healthz`)).status === 200, 20_000, dump);
    expect(await readFile(join(b, 'hello.txt'), 'utf8')).toBe('hello from path1\n');
    expect(daemon.has('starting the first run (SYNC_RUN_ON_START)')).toBe(true);
    expect(daemon.lines.find((l) => l.msg.startsWith('next run at'))).toBeDefined();

    // A change on path2 travels back on a later scheduled run.
    await writeFile(join(b, 'back.txt'), 'from path2\n');
    await waitFor('back.txt on path1', () => existsSync(join(a, 'back.txt')), 20_000, dump);
    expect(await readFile(join(a, 'back.txt'), 'utf8')).toBe('from path2\n');
    expect(daemon.has('starting a scheduled run')).toBe(true);
    // The file lands before its run has relisted and committed: wait for the run to be counted.
    await waitFor('the second successful run', async () => metric(await (await fetch(`${base}/metrics`)).text(), 'rclonesync_files_copied_total', { to: 'path1' }) === 1, 20_000, dump);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metric(metrics, 'rclonesync_runs_total', { outcome: 'success' })).toBeGreaterThanOrEqual(2);
    expect(metric(metrics, 'rclonesync_runs_total', { outcome: 'failed' })).toBe(0);
    expect(metric(metrics, 'rclonesync_files_copied_total', { to: 'path2' })).toBe(1);
    expect(metric(metrics, 'rclonesync_files_copied_total', { to: 'path1' })).toBe(1);
    expect(metric(metrics, 'rclonesync_bytes_copied_total', { to: 'path2' })).toBe('hello from path1\n'.length);
    const lastSuccess = metric(metrics, 'rclonesync_last_success_timestamp_seconds')!;
    expect(lastSuccess * 1000).toBeGreaterThan(startedAt);
    expect(lastSuccess * 1000).toBeLessThanOrEqual(Date.now());
    expect(metric(metrics, 'rclonesync_last_run_duration_seconds')).toBeGreaterThan(0);
    expect(metric(metrics, 'rclonesync_healthy')).toBe(1);

    const status = (await getJson(`${base}/status`)).body;
    expect(status.path2).toBe('side2:');
    expect(Date.parse(status.nextRun as string)).toBeGreaterThan(Date.now() - 1_000);
    const runs = status.runs as RunRecord[];
    expect(runs[0]).toMatchObject({ outcome: 'success', resync: true, counts: { copiesToPath2: 1 } });
    expect(runs.every((r) => r.outcome === 'success')).toBe(true);
    expect(status.health).toMatchObject({ healthy: true });

    // Pings: /start before each run, the plain URL after each success; nothing failed, no webhook.
    const pings = receiver.paths().filter((p) => p.includes('/ping/main'));
    expect(pings[0]).toBe('GET /ping/main/start');
    expect(pings).toContain('POST /ping/main');
    expect(receiver.requests.find((r) => r.path === '/ping/main')!.body).toMatch(/^run success .*1 copied to path2/);
    expect(receiver.paths().some((p) => p.includes('/fail') || p.includes('/notify'))).toBe(false);

    const healthy = await cli(['health'], env);
    expect(healthy.code).toBe(0);
    expect(healthy.stdout).toMatch(/^healthy: last run succeeded/);

    // Break the remote: runs fail, the loop goes on, health turns 1 with the reason.
    await writeConfig(conf, '[side2]\ntype = alias\nremote = nosuchremote:dir\n');
    const failedBefore = Date.now();
    const unhealthy = await waitFor('/healthz 503', async () => {
      const r = await getJson(`${base}/healthz`);
      return r.status === 503 ? r.body : undefined;
    }, 20_000, dump);
    expect(unhealthy.reason).toMatch(/^last run failed at .*rclone .* failed with exit code 1/);
    await waitFor('two more failed runs', async () => metric(await (await fetch(`${base}/metrics`)).text(), 'rclonesync_runs_total', { outcome: 'failed' })! >= 2, 20_000, dump);
    expect(daemon.alive).toBe(true);
    const sick = await cli(['health'], env);
    expect(sick.code).toBe(1);
    expect(sick.stdout).toMatch(/^unhealthy: last run failed/);
    const fail = await waitFor('a /fail ping', () => receiver.requests.find((r) => r.path === '/ping/main/fail' && r.at >= failedBefore), 10_000);
    expect(fail.method).toBe('POST');
    expect(fail.body).toMatch(/ERROR .*failed with exit code 1/);
    expect(Buffer.byteLength(fail.body)).toBeLessThanOrEqual(10 * 1024);
    const webhook = await waitFor('a failure webhook', () => receiver.requests.find((r) => r.path === '/notify/main'), 10_000);
    expect(JSON.parse(webhook.body)).toMatchObject({ event: 'failure', outcome: 'failed', exitCode: 1, message: expect.stringMatching(/failed with exit code 1/) });

    // Repair it: the next run succeeds and health recovers.
    await writeConfig(conf, good);
    await waitFor('/healthz 200 again', async () => (await fetch(`${base}/healthz`)).status === 200, 20_000, dump);
    expect((await cli(['health'], env)).code).toBe(0);
    expect(daemon.alive).toBe(true);

    daemon.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
  });

  it('SIGTERM during a slow run stops rclone, releases the lock and exits 0 within 10 s; the next run converges', async () => {
    const { a, b, stateDir, env: pairEnv } = await makePair('slow');
    await writeFile(join(a, 'seed.txt'), 'seed\n');
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = pairEnv({ SYNC_SCHEDULE: '* * * * * *', SYNC_HTTP_PORT: String(port), SYNC_PING_URL: `${receiver.url}/ping/slow` });
    const daemon = startDaemon({ ...env, SYNC_RCLONE_ARGS: '--bwlimit 100k' });
    const dump = () => daemon.dump();

    // A first run establishes the pair; then a 3 MB file needs about 30 s at 100 kB/s.
    await waitFor('the first run', () => existsSync(join(b, 'seed.txt')) && daemon.has('run success'), 20_000, dump);
    const content = randomBytes(3 * 1024 * 1024);
    await writeFile(join(a, 'big.bin'), content);
    const status = await waitFor('a transfer in progress', async () => {
      const s = (await getJson(`${base}/status`)).body as { running: boolean; current: { progress: { phase: string; transfers?: { toPath2?: { bytes: number } } } | null } | null };
      return s.current?.progress?.phase === 'propagating' && (s.current.progress.transfers?.toPath2?.bytes ?? 0) > 0 ? s : undefined;
    }, 20_000, dump);
    expect(status.running).toBe(true);
    expect(metric(await (await fetch(`${base}/metrics`)).text(), 'rclonesync_run_in_progress')).toBe(1);
    // Scheduled times reached during the run are skipped, and said so.
    const runsStarted = daemon.lines.filter((l) => /^starting (a scheduled|the first) run/.test(l.msg)).length;
    await waitFor('a skipped tick', () => daemon.has(/previous run is still in progress: skipping/), 5_000, dump);
    expect(daemon.lines.filter((l) => /^starting (a scheduled|the first) run/.test(l.msg))).toHaveLength(runsStarted);

    const sent = Date.now();
    daemon.kill('SIGTERM');
    const exit = await daemon.exited;
    expect(exit.code, dump()).toBe(0);
    expect(exit.at - sent).toBeLessThan(10_000);
    expect(daemon.has(/^stopping: cancelling the run in progress/)).toBe(true);
    expect(daemon.has('daemon stopped')).toBe(true);

    // The lock is released and the run is recorded as cancelled; the failure ping went out with the log.
    const pair = await pairDir(stateDir);
    expect(existsSync(join(pair, 'run.lock'))).toBe(false);
    const before = await history(stateDir);
    expect(before.at(-1)).toMatchObject({ outcome: 'cancelled', message: 'run cancelled by a signal' });
    expect(before.slice(0, -1).every((r) => r.outcome === 'success')).toBe(true);
    const daemonPings = receiver.paths().filter((p) => p.includes('/ping/slow'));
    expect(daemonPings.slice(-2)).toEqual(['GET /ping/slow/start', 'POST /ping/slow/fail']);
    expect(receiver.requests.find((r) => r.path === '/ping/slow/fail')!.body).toMatch(/run cancelled by a signal/);

    // A following one-shot run gets the lock (exit 0, not 4) and converges; a second finds nothing to do.
    const first = await cli(['run'], env);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect((await readFile(join(b, 'big.bin'))).equals(content)).toBe(true);
    expect(await listFiles(b)).toEqual(['big.bin', 'seed.txt']);
    expect(await listFiles(a)).toEqual(['big.bin', 'seed.txt']);
    const second = await cli(['run'], env);
    expect(second.code).toBe(0);
    const after = await history(stateDir);
    expect(after.slice(-3).map((r) => r.outcome)).toEqual(['cancelled', 'success', 'success']);
    expect(after.at(-1)!.counts).toMatchObject({ copiesToPath1: 0, copiesToPath2: 0, deletesOnPath1: 0, deletesOnPath2: 0, conflicts: 0 });
    // One-shot runs ping too (CronJob users).
    expect(receiver.paths().filter((p) => p.includes('/ping/slow')).slice(daemonPings.length)).toEqual(['GET /ping/slow/start', 'POST /ping/slow', 'GET /ping/slow/start', 'POST /ping/slow']);
  });

  it('one-shot run: SIGTERM stops rclone and records a cancelled run (exit 1) with a /fail ping; the next run converges', async () => {
    const { a, b, stateDir, env: pairEnv } = await makePair('oneshot');
    await writeFile(join(a, 'seed.txt'), 'seed\n');
    const env = pairEnv({ SYNC_PING_URL: `${receiver.url}/ping/oneshot` });
    expect((await cli(['run'], env)).code).toBe(0);
    const content = randomBytes(2 * 1024 * 1024);
    await writeFile(join(b, 'big.bin'), content);

    const run = startDaemon({ ...env, SYNC_RCLONE_ARGS: '--bwlimit 100k' }, 'run');
    await waitFor('the copy to start', () => run.has('copy path2 -> path1'), 20_000, () => run.dump());
    await new Promise((r) => setTimeout(r, 1_000));
    const sent = Date.now();
    run.kill('SIGTERM');
    const exit = await run.exited;
    expect(exit.code, run.dump()).toBe(1);
    expect(exit.at - sent).toBeLessThan(10_000);
    expect(run.has('run cancelled by a signal')).toBe(true);
    expect((await history(stateDir)).map((r) => r.outcome)).toEqual(['success', 'cancelled']);
    expect(existsSync(join(await pairDir(stateDir), 'run.lock'))).toBe(false);
    expect(receiver.paths().filter((p) => p.includes('/ping/oneshot'))).toEqual([
      'GET /ping/oneshot/start',
      'POST /ping/oneshot',
      'GET /ping/oneshot/start',
      'POST /ping/oneshot/fail',
    ]);

    const next = await cli(['run'], env);
    expect(next.code, next.stdout + next.stderr).toBe(0);
    expect((await readFile(join(a, 'big.bin'))).equals(content)).toBe(true);
    expect(await listFiles(a)).toEqual(['big.bin', 'seed.txt']);
  });

});

describe('rclonesync daemon with named pairs (issue 11)', () => {
  it('runs each pair on its own schedule; a failing pair never stops the other; HTTP, health, pings and metrics are per pair', async () => {
    const fast = await makePair('pair-fast');
    const bad = await makePair('pair-bad');
    const stateDir = join(root, 'pairs-state');
    // The bad pair's path2 is a remote that cannot work: each of its runs fails.
    const conf = join(bad.dir, 'rclone.conf');
    await writeConfig(conf, '[broken]\ntype = alias\nremote = nosuchremote:dir\n');
    await writeFile(join(fast.a, 'hello.txt'), 'hello\n');
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = {
      ...baseEnv(),
      RCLONE_CONFIG: conf,
      SYNC_STATE_DIR: stateDir,
      SYNC_HTTP_PORT: String(port),
      SYNC_HEALTH_MAX_AGE: '1h',
      SYNC_WATCH: 'false',
      SYNC_PAIR_FAST_PATH1: fast.a,
      SYNC_PAIR_FAST_PATH2: fast.b,
      SYNC_PAIR_FAST_SCHEDULE: '*/2 * * * * *',
      SYNC_PAIR_FAST_PING_URL: `${receiver.url}/ping/fast`,
      SYNC_PAIR_BAD_PATH1: bad.a,
      SYNC_PAIR_BAD_PATH2: 'broken:',
      // Hours away: the bad pair runs once, on start.
      SYNC_PAIR_BAD_SCHEDULE: '0 0 1 1 *',
      SYNC_PAIR_BAD_PING_URL: `${receiver.url}/ping/bad`,
      SYNC_PAIR_BAD_NOTIFY_URL: `${receiver.url}/notify/bad`,
    };
    const daemon = startDaemon(env);
    const dump = () => daemon.dump();

    await waitFor('/healthz/fast 200', async () => (await fetch(`${base}/healthz/fast`)).status === 200, 20_000, dump);
    await waitFor('/healthz/bad 503 after its run', async () => {
      const r = await getJson(`${base}/healthz/bad`);
      return r.status === 503 && (r.body.lastRun as { outcome?: string } | undefined)?.outcome === 'failed';
    }, 20_000, dump);
    const all = await getJson(`${base}/healthz`);
    expect(all.status).toBe(503);
    expect(all.body).toMatchObject({ status: 'unhealthy', healthy: false, unhealthy: ['bad'], reason: 'unhealthy: bad' });
    expect((await fetch(`${base}/healthz/nosuchpair`)).status).toBe(404);

    // The fast pair goes on by its schedule after the bad pair failed.
    await writeFile(join(fast.b, 'back.txt'), 'from path2\n');
    await waitFor('back.txt on the fast pair\'s path1', () => existsSync(join(fast.a, 'back.txt')), 20_000, dump);
    expect(await readFile(join(fast.b, 'hello.txt'), 'utf8')).toBe('hello\n');
    expect(daemon.alive).toBe(true);

    const status = (await getJson(`${base}/status`)).body;
    const pairs = status.pairs as { pair: string; name?: string; schedule: string; health: { healthy: boolean } }[];
    expect(pairs.map((p) => [p.pair, p.name, p.schedule, p.health.healthy])).toEqual([
      ['bad', 'bad', '0 0 1 1 *', false],
      ['fast', 'fast', '*/2 * * * * *', true],
    ]);

    // The file lands before its run has relisted and committed: wait for the run to be counted.
    await waitFor('a second successful run of the fast pair', async () => metric(await (await fetch(`${base}/metrics`)).text(), 'rclonesync_runs_total', { pair: 'fast', outcome: 'success' })! >= 2, 20_000, dump);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metric(metrics, 'rclonesync_runs_total', { pair: 'bad', outcome: 'failed' })).toBe(1);
    expect(metric(metrics, 'rclonesync_healthy', { pair: 'fast' })).toBe(1);
    expect(metric(metrics, 'rclonesync_healthy', { pair: 'bad' })).toBe(0);
    expect(metrics.match(/^# TYPE rclonesync_runs_total /gm)).toHaveLength(1);

    // Pings per pair, to each pair's own URL.
    const pings = receiver.paths();
    expect(pings).toContain('GET /ping/fast/start');
    expect(pings).toContain('POST /ping/fast');
    expect(pings).toContain('POST /ping/bad/fail');
    expect(pings).not.toContain('POST /ping/bad');
    // Each pair's /fail ping carries its own log lines only.
    const badFail = receiver.requests.find((r) => r.path === '/ping/bad/fail')!;
    expect(badFail.body).toMatch(/ERROR .*"pair":"bad"/);
    expect(badFail.body).not.toContain('"pair":"fast"');
    const webhook = await waitFor('the bad pair\'s failure webhook', () => receiver.requests.find((r) => r.path === '/notify/bad'), 10_000);
    expect(JSON.parse(webhook.body)).toMatchObject({ event: 'failure', name: 'bad', outcome: 'failed', exitCode: 1 });

    // Each pair has its own state folder (and lock).
    const dirs = (await readdir(stateDir, { withFileTypes: true })).filter((e) => e.isDirectory());
    expect(dirs).toHaveLength(2);

    const health = await cli(['health'], env);
    expect(health.code).toBe(1);
    expect(health.stdout).toMatch(/^unhealthy: 1 of 2 pairs: bad\n/);
    expect((await cli(['health', '--pair', 'fast'], env)).code).toBe(0);

    daemon.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);

    // One-shot run of every pair: the most severe exit code; --pair picks; an unknown name is exit 2.
    const runAll = await cli(['run'], env);
    expect(runAll.code, runAll.stderr).toBe(1);
    expect(runAll.stderr).toMatch(/pair "bad": /);
    expect((await cli(['run', '--pair', 'fast'], env)).code).toBe(0);
    const unknown = await cli(['run', '--pair', 'nope'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown pair "nope" (--pair): the pairs are bad, fast');
  });

  it('watch mode: a file saved on path1 reaches path2 within SYNC_WATCH_DELAY and a run while the schedule is hours away; the copy starts nothing', async () => {
    const pair = await makePair('pair-watch');
    const env: NodeJS.ProcessEnv = {
      ...baseEnv(),
      SYNC_STATE_DIR: pair.stateDir,
      SYNC_PAIR_NOTES_PATH1: pair.a,
      SYNC_PAIR_NOTES_PATH2: pair.b,
      SYNC_PAIR_NOTES_SCHEDULE: '0 0 1 1 *',
      SYNC_WATCH_DELAY: '1s',
    };
    const daemon = startDaemon(env);
    const dump = () => daemon.dump();
    await waitFor('watching', () => daemon.has(/^watching path1 and path2 for changes/), 20_000, dump);
    await waitFor('the first run', async () => (await history(pair.stateDir)).length === 1, 20_000, dump);
    const watchRuns = () => daemon.lines.filter((l) => l.msg === 'starting a run for the local changes (SYNC_WATCH)').length;
    expect(watchRuns()).toBe(0);

    const saved = Date.now();
    await writeFile(join(pair.a, 'note.txt'), 'saved on path1\n');
    await waitFor('note.txt on path2', () => existsSync(join(pair.b, 'note.txt')), 1_000 + 20_000, dump);
    expect(Date.now() - saved).toBeLessThan(1_000 + 20_000);
    await waitFor('the watch run recorded', async () => (await history(pair.stateDir)).length === 2, 20_000, dump);
    expect(watchRuns()).toBe(1);
    // The run's own copy on path2 starts no other run.
    await new Promise((r) => setTimeout(r, 4_000));
    expect(watchRuns(), dump()).toBe(1);
    expect((await history(pair.stateDir)).length).toBe(2);
    expect(daemon.has('starting a scheduled run')).toBe(false);

    daemon.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
  });
});
