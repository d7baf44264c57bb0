import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, SyncMetrics, type DaemonView, type HttpServerHandle } from '../../src/appliance/http.ts';
import type { Outcome } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { appendHistory, type RunRecord } from '../../src/state/history.ts';
import { writeTrashStats } from '../../src/state/trash-stats.ts';
import { emptyCounts, type PlanCounts } from '../../src/model.ts';
import { runRecord } from '../helpers/records.ts';

const quietLogger = () => createLogger({ level: 'info', format: 'json' }, new Writable({ write: (_c, _e, cb) => cb() }));

const counts = (over: Partial<PlanCounts> = {}): PlanCounts => ({ ...emptyCounts(), ...over });

const record = (outcome: Outcome, endedAt: string, extra: Partial<RunRecord> = {}): RunRecord =>
  runRecord(outcome, { endedAt, durationMs: 2_500, runId: `r-${endedAt}` }, extra);

/** name{labels} value -> value, for the sample whose name and labels match. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe('SyncMetrics', () => {
  it('starts its gauges from the history, so a restarted daemon reports the last success', async () => {
    const metrics = new SyncMetrics('photos-pair');
    metrics.loadHistory([
      record('success', '2025-01-01T10:00:00.000Z', { counts: counts({ copiesToPath2: 4 }) }),
      record('safety-stop', '2025-01-01T11:00:00.000Z', { gate: 'max-delete' }),
      record('locked', '2025-01-01T11:30:00.000Z'),
    ]);
    const text = await metrics.text();
    expect(text).toContain('# TYPE rclonesync_runs_total counter');
    expect(text).toContain('# TYPE rclonesync_last_success_timestamp_seconds gauge');
    expect(sample(text, 'rclonesync_last_success_timestamp_seconds', { pair: 'photos-pair' })).toBe(Date.parse('2025-01-01T10:00:00.000Z') / 1000);
    // The lock-held run is not "the last run".
    expect(sample(text, 'rclonesync_last_run_timestamp_seconds')).toBe(Date.parse('2025-01-01T11:00:00.000Z') / 1000);
    expect(sample(text, 'rclonesync_last_run_exit_code')).toBe(3);
    expect(sample(text, 'rclonesync_last_run_duration_seconds')).toBe(2.5);
    expect(sample(text, 'rclonesync_safety_stop_active')).toBe(1);
    // Counters count this process's runs only: every outcome is present, at zero.
    for (const outcome of ['success', 'failed', 'safety-stop', 'locked', 'usage', 'cancelled']) {
      expect(sample(text, 'rclonesync_runs_total', { outcome })).toBe(0);
    }
    expect(sample(text, 'rclonesync_files_copied_total', { to: 'path2' })).toBe(0);
  });

  it('counts runs, files, bytes, deletions, conflicts and safety stops', async () => {
    const metrics = new SyncMetrics('p');
    metrics.recordRun(record('success', '2025-01-02T00:00:00.000Z', { counts: counts({ copiesToPath1: 2, copiesToPath2: 3, bytesToPath1: 100, bytesToPath2: 2048, deletesOnPath1: 1, deletesOnPath2: 4, conflicts: 1 }), durationMs: 12_000 }));
    metrics.recordRun(record('success', '2025-01-02T01:00:00.000Z', { counts: counts({ copiesToPath2: 1, bytesToPath2: 10 }) }));
    // A dry run and a failed run change nothing: their counts are plans, not work done.
    metrics.recordRun(record('success', '2025-01-02T02:00:00.000Z', { dryRun: true, counts: counts({ copiesToPath2: 50 }) }));
    metrics.recordRun(record('failed', '2025-01-02T03:00:00.000Z', { counts: counts({ copiesToPath2: 70 }) }));
    metrics.recordRun(record('safety-stop', '2025-01-02T04:00:00.000Z'));
    metrics.recordRun(record('locked', '2025-01-02T05:00:00.000Z'));
    const text = await metrics.text();
    expect(sample(text, 'rclonesync_runs_total', { outcome: 'success' })).toBe(3);
    expect(sample(text, 'rclonesync_runs_total', { outcome: 'failed' })).toBe(1);
    expect(sample(text, 'rclonesync_runs_total', { outcome: 'safety-stop' })).toBe(1);
    expect(sample(text, 'rclonesync_runs_total', { outcome: 'locked' })).toBe(1);
    expect(sample(text, 'rclonesync_files_copied_total', { to: 'path1' })).toBe(2);
    expect(sample(text, 'rclonesync_files_copied_total', { to: 'path2' })).toBe(4);
    expect(sample(text, 'rclonesync_bytes_copied_total', { to: 'path2' })).toBe(2058);
    expect(sample(text, 'rclonesync_files_deleted_total', { side: 'path1' })).toBe(1);
    expect(sample(text, 'rclonesync_files_deleted_total', { side: 'path2' })).toBe(4);
    expect(sample(text, 'rclonesync_conflicts_total')).toBe(1);
    expect(sample(text, 'rclonesync_safety_stops_total')).toBe(1);
    expect(sample(text, 'rclonesync_safety_stop_active')).toBe(1);
    expect(sample(text, 'rclonesync_last_success_timestamp_seconds')).toBe(Date.parse('2025-01-02T02:00:00.000Z') / 1000);
    expect(sample(text, 'rclonesync_last_run_exit_code')).toBe(3);

    metrics.recordRun(record('success', '2025-01-02T06:00:00.000Z'));
    expect(sample(await metrics.text(), 'rclonesync_safety_stop_active')).toBe(0);
  });
});

describe('HTTP endpoints', () => {
  let dir: string;
  let server: HttpServerHandle;
  let base: string;
  let current: ReturnType<DaemonView['current']> = null;
  const next = new Date(Date.now() + 60_000);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rclonesync-http-'));
    const view: DaemonView = {
      pair: 'pair-1',
      path1: '/data',
      path2: ':sftp,host=h,pass=secret:dir',
      schedule: '*/5 * * * *',
      timezone: 'UTC',
      historyFile: join(dir, 'history.jsonl'),
      trashStatsFile: join(dir, 'trash.json'),
      maxAgeMs: () => 600_000,
      nextRun: () => next,
      current: () => current,
    };
    const metrics = new SyncMetrics('pair-1', { trashStatsFile: join(dir, 'trash.json') });
    metrics.setVerdictSource(async () => ({ healthy: true, reason: 'x', maxAgeMs: 1 }));
    server = await startHttpServer(0, view, metrics, quietLogger(), '127.0.0.1');
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('/healthz is 503 with the reason before any run, 200 after a recent success', async () => {
    const before = await fetch(`${base}/healthz`);
    expect(before.status).toBe(503);
    expect(await before.json()).toMatchObject({ status: 'unhealthy', healthy: false, reason: 'no run has finished yet' });

    await appendHistory(join(dir, 'history.jsonl'), record('success', new Date(Date.now() - 1_000).toISOString(), { counts: counts({ copiesToPath2: 1 }) }));
    const after = await fetch(`${base}/healthz`);
    expect(after.status).toBe(200);
    expect(await after.json()).toMatchObject({ status: 'ok', healthy: true, maxAgeMs: 600_000 });
  });

  it('/status shows the pair (credentials redacted), runs, next run and the run in progress', async () => {
    current = { startedAt: '2025-01-01T00:00:00.000Z', progress: { phase: 'propagating', listed: { path1: 10, path2: 9 } } };
    const response = await fetch(`${base}/status`);
    expect(response.status).toBe(200);
    const status = (await response.json()) as Record<string, unknown>;
    expect(status).toMatchObject({ pair: 'pair-1', path1: '/data', schedule: '*/5 * * * *', nextRun: next.toISOString(), running: true });
    expect(status.path2).toBe(':sftp,host=h,pass=***:dir');
    expect(status.current).toEqual(current);
    expect((status.runs as RunRecord[]).length).toBe(1);
    expect((status.health as { healthy: boolean }).healthy).toBe(true);
    current = null;
    expect(await (await fetch(`${base}/status`)).json()).toMatchObject({ running: false, current: null });
  });

  it('/metrics speaks the Prometheus text format', async () => {
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(sample(text, 'rclonesync_next_run_timestamp_seconds')).toBe(next.getTime() / 1000);
    expect(sample(text, 'rclonesync_healthy')).toBe(1);
  });

  it('/status and /metrics report each side`s trash as the last run saw it', async () => {
    expect(await (await fetch(`${base}/status`)).json()).toMatchObject({ trash: null });
    const trash = {
      path1: { files: 0, bytes: 0, oldestStamp: null },
      path2: { files: 3, bytes: 1234, oldestStamp: '20261201T083000Z' },
      checkedAt: '2026-12-01T09:00:00.000Z',
    };
    await writeTrashStats(join(dir, 'trash.json'), trash);
    expect(await (await fetch(`${base}/status`)).json()).toMatchObject({ trash });
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/rclonesync_trash_files\{side="path2",pair="pair-1"\} 3/);
    expect(text).toMatch(/rclonesync_trash_bytes\{side="path2",pair="pair-1"\} 1234/);
    expect(text).toMatch(/rclonesync_trash_files\{side="path1",pair="pair-1"\} 0/);
    expect(text).toMatch(new RegExp(`rclonesync_trash_oldest_timestamp_seconds\\{side="path2",pair="pair-1"\\} ${Date.parse('2026-12-01T08:30:00Z') / 1000}`));
  });

  it('refuses other paths and methods', async () => {
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/healthz`, { method: 'HEAD' })).status).toBe(200);
  });
});

describe('HTTP endpoints with several pairs (issue 11)', () => {
  let dir: string;
  let server: HttpServerHandle;
  let base: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rclonesync-http-pairs-'));
    const view = (name: string): DaemonView => ({
      pair: name,
      name,
      path1: `/data/${name}`,
      path2: `remote:${name}`,
      schedule: '*/5 * * * *',
      timezone: 'UTC',
      historyFile: join(dir, `${name}.jsonl`),
      maxAgeMs: () => 600_000,
      nextRun: () => null,
      current: () => null,
    });
    const views = [view('docs'), view('photos')];
    const metrics = views.map((v) => new SyncMetrics(v.pair));
    metrics[1]!.recordRun(record('success', new Date().toISOString(), { counts: counts({ copiesToPath2: 2 }) }));
    await appendHistory(join(dir, 'photos.jsonl'), record('success', new Date(Date.now() - 1_000).toISOString()));
    await appendHistory(join(dir, 'docs.jsonl'), record('failed', new Date(Date.now() - 1_000).toISOString(), { message: 'remote down' }));
    server = await startHttpServer(0, views, metrics, quietLogger(), '127.0.0.1');
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('/healthz is 200 only when every pair is healthy and names the ones that are not', async () => {
    const response = await fetch(`${base}/healthz`);
    expect(response.status).toBe(503);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'unhealthy', healthy: false, unhealthy: ['docs'], reason: 'unhealthy: docs' });
    expect((body.pairs as { pair: string; healthy: boolean }[]).map((p) => [p.pair, p.healthy])).toEqual([
      ['docs', false],
      ['photos', true],
    ]);
  });

  it('/healthz/<pair> reports one pair; an unknown pair is 404 listing them', async () => {
    const photos = await fetch(`${base}/healthz/photos`);
    expect(photos.status).toBe(200);
    expect(await photos.json()).toMatchObject({ status: 'ok', pair: 'photos', healthy: true });
    const docs = await fetch(`${base}/healthz/DOCS`);
    expect(docs.status).toBe(503);
    expect(await docs.json()).toMatchObject({ pair: 'docs', healthy: false, reason: expect.stringContaining('remote down') });
    const unknown = await fetch(`${base}/healthz/music`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ pairs: ['docs', 'photos'] });
  });

  it('/status lists every pair with its name; nothing at the top level but the list', async () => {
    const status = (await (await fetch(`${base}/status`)).json()) as Record<string, unknown>;
    expect(Object.keys(status)).toEqual(['pairs']);
    expect((status.pairs as { pair: string; name: string; path2: string }[]).map((p) => [p.pair, p.name, p.path2])).toEqual([
      ['docs', 'docs', 'remote:docs'],
      ['photos', 'photos', 'remote:photos'],
    ]);
  });

  it('/metrics is one exposition: each metric declared once, every sample with its pair label', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text.match(/^# TYPE rclonesync_runs_total counter$/gm)).toHaveLength(1);
    expect(text.match(/^# HELP rclonesync_files_copied_total /gm)).toHaveLength(1);
    expect(sample(text, 'rclonesync_files_copied_total', { pair: 'photos', to: 'path2' })).toBe(2);
    expect(sample(text, 'rclonesync_files_copied_total', { pair: 'docs', to: 'path2' })).toBe(0);
    expect(sample(text, 'rclonesync_runs_total', { pair: 'photos', outcome: 'success' })).toBe(1);
  });
});
