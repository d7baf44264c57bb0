/**
 * The daemon's HTTP endpoints (SYNC_HTTP_PORT): /healthz for probes, /status for people and
 * scripts, /metrics for Prometheus. Everything is read from the run history, plus what only the
 * daemon knows: the run in progress and the next scheduled time.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { OUTCOMES } from '../errors.ts';
import { redact, type Logger } from '../log.ts';
import { readHistory, type RunRecord } from '../state/history.ts';
import { readTrashStats } from '../state/trash-stats.ts';
import { stampTime } from '../sync/trash.ts';
import type { RunProgress } from '../model.ts';
import { healthVerdict, type HealthVerdict } from './health.ts';
import { conflictCopies } from './conflicts.ts';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './page.ts';

/** The Prometheus metrics of one pair. Counters count runs of this process; gauges start from the history. */
export class SyncMetrics {
  readonly registry = new Registry();
  /** The process's own metrics (memory, CPU, event loop): once per process, without a pair label. */
  private readonly processRegistry: Registry | undefined;
  private readonly runs: Counter<'outcome'>;
  private readonly copied: Counter<'to'>;
  private readonly deleted: Counter<'side'>;
  private readonly moved: Counter<'side'>;
  private readonly conflicts: Counter;
  private readonly bytes: Counter<'to'>;
  private readonly safetyStops: Counter;
  private readonly lastSuccess: Gauge;
  private readonly lastRunEnd: Gauge;
  private readonly lastRunDuration: Gauge;
  private readonly lastRunExitCode: Gauge;
  private readonly safetyStopActive: Gauge;
  private readonly running: Gauge;
  private readonly nextRun: Gauge;
  private readonly healthy: Gauge;
  private verdict: (() => Promise<HealthVerdict>) | undefined;

  /** `trashStatsFile`: what each side's trash holds, as the last run saw it (state/trash-stats.ts). */
  constructor(pair: string, options: { processMetrics?: boolean; trashStatsFile?: string } = {}) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ pair });
    if (options.processMetrics) {
      this.processRegistry = new Registry();
      collectDefaultMetrics({ register: this.processRegistry });
    }
    this.runs = new Counter({ name: 'rclonesync_runs_total', help: 'Sync runs finished by this process, by outcome.', labelNames: ['outcome'], registers });
    for (const outcome of OUTCOMES) this.runs.inc({ outcome }, 0);
    this.copied = new Counter({ name: 'rclonesync_files_copied_total', help: 'Files copied by successful runs, by destination side.', labelNames: ['to'], registers });
    this.bytes = new Counter({ name: 'rclonesync_bytes_copied_total', help: 'Bytes copied by successful runs, by destination side.', labelNames: ['to'], registers });
    this.deleted = new Counter({ name: 'rclonesync_files_deleted_total', help: 'Files deleted by successful runs, by side.', labelNames: ['side'], registers });
    for (const side of ['path1', 'path2']) {
      this.copied.inc({ to: side }, 0);
      this.bytes.inc({ to: side }, 0);
      this.deleted.inc({ side }, 0);
    }
    this.moved = new Counter({ name: 'rclonesync_files_moved_total', help: 'Renames and moves carried out as moves by successful runs, by side.', labelNames: ['side'], registers });
    for (const side of ['path1', 'path2']) this.moved.inc({ side }, 0);
    this.conflicts = new Counter({ name: 'rclonesync_conflicts_total', help: 'Files changed on both sides, kept as conflict copies, by successful runs.', registers });
    this.safetyStops = new Counter({ name: 'rclonesync_safety_stops_total', help: 'Runs stopped by a safety gate.', registers });
    this.lastSuccess = new Gauge({ name: 'rclonesync_last_success_timestamp_seconds', help: 'When the last successful run ended (Unix time); 0 if none.', registers });
    this.lastRunEnd = new Gauge({ name: 'rclonesync_last_run_timestamp_seconds', help: 'When the last run ended (Unix time); 0 if none.', registers });
    this.lastRunDuration = new Gauge({ name: 'rclonesync_last_run_duration_seconds', help: 'How long the last run took.', registers });
    this.lastRunExitCode = new Gauge({ name: 'rclonesync_last_run_exit_code', help: 'Exit code of the last run (0 success, 1 failed, 2 usage, 3 safety stop); -1 if none.', registers });
    this.safetyStopActive = new Gauge({ name: 'rclonesync_safety_stop_active', help: '1 while a safety stop has not been followed by a successful run.', registers });
    this.running = new Gauge({ name: 'rclonesync_run_in_progress', help: '1 while a run is in progress.', registers });
    this.nextRun = new Gauge({ name: 'rclonesync_next_run_timestamp_seconds', help: 'When the next scheduled run is due (Unix time); 0 if none.', registers });
    const self = this;
    this.healthy = new Gauge({
      name: 'rclonesync_healthy',
      help: '1 when the health check passes (same verdict as /healthz).',
      registers,
      async collect() {
        if (self.verdict) this.set((await self.verdict()).healthy ? 1 : 0);
      },
    });
    const trashFile = options.trashStatsFile;
    const trashGauge = (name: string, help: string, value: (side: { files: number; bytes: number; oldestStamp: string | null }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['side'],
        registers,
        async collect() {
          const stats = trashFile ? await readTrashStats(trashFile) : undefined;
          for (const side of ['path1', 'path2'] as const) this.set({ side }, stats ? value(stats[side]) : 0);
        },
      });
    trashGauge('rclonesync_trash_files', "Files in each side's trash, as the last run that looked saw it.", (t) => t.files);
    trashGauge('rclonesync_trash_bytes', "Bytes in each side's trash, as the last run that looked saw it.", (t) => t.bytes);
    trashGauge('rclonesync_trash_oldest_timestamp_seconds', "The oldest run folder in each side's trash (Unix time of its stamp); 0 if none.", (t) =>
      t.oldestStamp ? (stampTime(t.oldestStamp) ?? 0) / 1000 : 0,
    );
    this.lastRunExitCode.set(-1);
    this.lastSuccess.set(0);
    this.lastRunEnd.set(0);
    this.lastRunDuration.set(0);
    this.safetyStopActive.set(0);
    this.running.set(0);
    this.nextRun.set(0);
    this.healthy.set(0);
  }

  /** Sets the gauges from the history (at start, so a restarted daemon still reports its last success). */
  loadHistory(history: readonly RunRecord[]): void {
    const runs = history.filter((r) => r.outcome !== 'locked');
    let stopActive = false;
    for (const record of runs) {
      if (record.outcome === 'success') {
        this.lastSuccess.set(seconds(record.endedAt));
        stopActive = false;
      } else if (record.outcome === 'safety-stop') {
        stopActive = true;
      }
    }
    this.safetyStopActive.set(stopActive ? 1 : 0);
    const last = runs.at(-1);
    if (last) this.setLastRun(last);
  }

  /** A run of this process finished. */
  recordRun(report: RunRecord): void {
    this.runs.inc({ outcome: report.outcome });
    if (report.outcome === 'locked') return;
    this.setLastRun(report);
    if (report.outcome === 'success') {
      this.lastSuccess.set(seconds(report.endedAt));
      this.safetyStopActive.set(0);
      const c = report.counts;
      if (c && !report.dryRun) {
        this.copied.inc({ to: 'path1' }, c.copiesToPath1);
        this.copied.inc({ to: 'path2' }, c.copiesToPath2);
        this.bytes.inc({ to: 'path1' }, c.bytesToPath1);
        this.bytes.inc({ to: 'path2' }, c.bytesToPath2);
        this.deleted.inc({ side: 'path1' }, c.deletesOnPath1);
        this.deleted.inc({ side: 'path2' }, c.deletesOnPath2);
        this.moved.inc({ side: 'path1' }, c.movesOnPath1 ?? 0);
        this.moved.inc({ side: 'path2' }, c.movesOnPath2 ?? 0);
        this.conflicts.inc(c.conflicts);
      }
    } else if (report.outcome === 'safety-stop') {
      this.safetyStops.inc();
      this.safetyStopActive.set(1);
    }
  }

  setRunning(running: boolean): void {
    this.running.set(running ? 1 : 0);
  }

  setNextRun(next: Date | null): void {
    this.nextRun.set(next ? next.getTime() / 1000 : 0);
  }

  /** Where rclonesync_healthy comes from at each scrape. */
  setVerdictSource(verdict: () => Promise<HealthVerdict>): void {
    this.verdict = verdict;
  }

  async text(): Promise<string> {
    return combineMetricsText([...(this.processRegistry ? [await this.processRegistry.metrics()] : []), await this.registry.metrics()]);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private setLastRun(record: RunRecord): void {
    this.lastRunEnd.set(seconds(record.endedAt));
    this.lastRunDuration.set(record.durationMs / 1000);
    this.lastRunExitCode.set(record.exitCode);
  }
}

const seconds = (iso: string): number => Date.parse(iso) / 1000;

/**
 * Several registries' Prometheus text as one exposition: each metric's HELP and TYPE once, then the
 * samples of every registry (each pair's carry its own `pair` label). Prometheus refuses a metric
 * whose TYPE appears twice, so the texts cannot simply be concatenated.
 */
export function combineMetricsText(texts: readonly string[]): string {
  const families = new Map<string, { header: string[]; samples: string[] }>();
  for (const text of texts) {
    let family: { header: string[]; samples: string[] } | undefined;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const comment = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (comment) {
        const name = comment[2]!;
        const known = families.get(name);
        family = known ?? { header: [], samples: [] };
        if (!known) families.set(name, family);
        if (!family.header.some((h) => h.startsWith(`# ${comment[1]} `))) family.header.push(line);
        continue;
      }
      family?.samples.push(line);
    }
  }
  return [...families.values()].map((f) => `${[...f.header, ...f.samples].join('\n')}\n`).join('\n');
}

/** What the endpoints need to know about the daemon. */
export interface DaemonView {
  /** How the endpoints name the pair (/healthz/<pair>, the `pair` label): its name, else its state folder. */
  readonly pair: string;
  /** A named pair's name (issue 11). */
  readonly name?: string;
  readonly path1: string;
  readonly path2: string;
  readonly schedule: string;
  readonly timezone: string | undefined;
  readonly historyFile: string;
  /** What each side's trash holds (state/trash-stats.ts); absent: not reported. */
  readonly trashStatsFile?: string;
  /** The committed snapshot, for the conflict copies the pair holds (conflicts.ts); absent: not reported. */
  readonly snapshotFile?: string;
  maxAgeMs(): number;
  nextRun(): Date | null;
  /** The run in progress, or null. */
  current(): { startedAt: string; progress: RunProgress | null } | null;
}

export interface HttpServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

export async function verdictOf(view: DaemonView): Promise<HealthVerdict> {
  return healthVerdict(await readHistory(view.historyFile), Date.now(), view.maxAgeMs());
}

export async function statusOf(view: DaemonView): Promise<Record<string, unknown>> {
  const history = await readHistory(view.historyFile);
  const next = view.nextRun();
  const current = view.current();
  return {
    pair: view.pair,
    ...(view.name ? { name: view.name } : {}),
    path1: redact(view.path1),
    path2: redact(view.path2),
    schedule: view.schedule,
    timezone: view.timezone ?? null,
    nextRun: next ? next.toISOString() : null,
    running: current !== null,
    current,
    health: healthVerdict(history, Date.now(), view.maxAgeMs()),
    trash: (view.trashStatsFile ? await readTrashStats(view.trashStatsFile) : undefined) ?? null,
    conflicts: (view.snapshotFile ? await conflictCopies(view.snapshotFile) : undefined) ?? null,
    runs: history.slice(-20),
  };
}

/**
 * Serves every pair (the daemon's pairs, in order). `/status` is `{pairs: [...]}`; with one pair
 * its fields are at the top level too, as before pairs had names.
 */
export function startHttpServer(
  port: number,
  view: DaemonView | readonly DaemonView[],
  metrics: SyncMetrics | readonly SyncMetrics[],
  logger: Logger,
  host = '0.0.0.0',
): Promise<HttpServerHandle> {
  const views: readonly DaemonView[] = Array.isArray(view) ? view : [view as DaemonView];
  const allMetrics: readonly SyncMetrics[] = Array.isArray(metrics) ? metrics : [metrics as SyncMetrics];
  const server = createServer((request, response) => {
    handle(request, response, views, allMetrics).catch((error: unknown) => {
      logger.error({ err: error, url: request.url }, 'HTTP request failed');
      if (!response.headersSent) send(response, 500, 'application/json', JSON.stringify({ error: 'internal error' }));
      else response.destroy();
    });
  });
  // Probes and scrapers open and close connections; never let one idle socket hold shutdown up.
  server.keepAliveTimeout = 5_000;
  server.requestTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      server.on('error', (error) => logger.error({ err: error }, 'HTTP server error'));
      const actual = (server.address() as AddressInfo).port;
      logger.info({ port: actual }, `serving the status page (/), /healthz, /status and /metrics on port ${actual}`);
      resolve({ port: actual, close: () => closeServer(server) });
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function handle(request: IncomingMessage, response: ServerResponse, views: readonly DaemonView[], metrics: readonly SyncMetrics[]): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  const path = new URL(request.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '') || '/';
  const onePair = /^\/healthz?\/([^/]+)$/.exec(path);
  if (onePair) {
    let key: string;
    try {
      key = decodeURIComponent(onePair[1]!).toLowerCase();
    } catch {
      key = '';
    }
    const view = views.find((v) => v.pair.toLowerCase() === key);
    if (!view) {
      send(response, 404, 'application/json', JSON.stringify({ error: `unknown pair "${onePair[1]}"`, pairs: views.map((v) => v.pair) }));
      return;
    }
    const verdict = await verdictOf(view);
    send(response, verdict.healthy ? 200 : 503, 'application/json', JSON.stringify({ status: verdict.healthy ? 'ok' : 'unhealthy', pair: view.pair, ...verdict }));
    return;
  }
  switch (path) {
    case '/healthz':
    case '/health': {
      // 200 only when every pair is healthy; the body names the ones that are not.
      const verdicts = await Promise.all(views.map(async (v) => ({ pair: v.pair, ...(v.name ? { name: v.name } : {}), ...(await verdictOf(v)) })));
      const unhealthy = verdicts.filter((v) => !v.healthy).map((v) => v.pair);
      const healthy = unhealthy.length === 0;
      const single = verdicts.length === 1 ? verdicts[0] : undefined;
      send(
        response,
        healthy ? 200 : 503,
        'application/json',
        JSON.stringify({
          status: healthy ? 'ok' : 'unhealthy',
          ...single,
          healthy,
          ...(single ? {} : { reason: healthy ? `all ${verdicts.length} pairs are healthy` : `unhealthy: ${unhealthy.join(', ')}` }),
          unhealthy,
          pairs: verdicts,
        }),
      );
      return;
    }
    case '/status': {
      const pairs = await Promise.all(views.map((v) => statusOf(v)));
      send(response, 200, 'application/json', `${JSON.stringify({ ...(pairs.length === 1 ? pairs[0] : {}), pairs }, null, 2)}\n`);
      return;
    }
    case '/metrics': {
      const texts: string[] = [];
      for (const [i, m] of metrics.entries()) {
        const view = views[i];
        if (view) m.setNextRun(view.nextRun());
        texts.push(await m.text());
      }
      send(response, 200, metrics[0]?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8', combineMetricsText(texts));
      return;
    }
    case '/':
      // The status page (page.ts); it polls /status.
      response.setHeader('content-security-policy', STATUS_PAGE_CSP);
      send(response, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
      return;
    default:
      send(response, 404, 'text/plain; charset=utf-8', 'not found: try /healthz, /healthz/<pair>, /status or /metrics\n');
  }
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
