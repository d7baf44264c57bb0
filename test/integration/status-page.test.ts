/**
 * The status page (`GET /`) in a real browser: Debian's chromium driven by playwright-core (never a
 * downloaded browser). Against the daemon's real HTTP server: a pair with its last run, trash and
 * conflict copies, a run in progress with its progress bar, the page updating after the run without
 * a reload, no credential shown, no console error. Against a stand-in /status in the list shape
 * (`{"pairs": [...]}`, as `status --json` prints it): two pairs.
 *
 * RCLONESYNC_SCREENSHOT=docs/status-page.png saves a phone-sized screenshot of the two-pair page.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHttpServer, SyncMetrics, type DaemonView, type HttpServerHandle } from '../../src/appliance/http.ts';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from '../../src/appliance/page.ts';
import { createLogger } from '../../src/log.ts';
import { appendHistory, type RunRecord } from '../../src/state/history.ts';
import { writeTrashStats } from '../../src/state/trash-stats.ts';
import type { RunProgress } from '../../src/model.ts';
import { writeSnapshot } from '../../src/state/snapshot.ts';
import { emptyCounts, type PlanCounts } from '../../src/model.ts';
import { REPO_ROOT } from '../helpers/processes.ts';
import { runRecord } from '../helpers/records.ts';

const CHROMIUM = '/usr/bin/chromium';
const quietLogger = () => createLogger({ level: 'warn', format: 'json' }, new Writable({ write: (_c, _e, cb) => cb() }));

let dir: string;
let context: BrowserContext;
let page: Page;
let problems: string[];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/setup-env.sh installs Debian's chromium (apt-get install chromium)`);
  dir = await mkdtemp(join(tmpdir(), 'rs-page-'));
  // A fresh profile each run, and none of chromium's calls home.
  context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
  });
}, 120_000);
afterAll(async () => {
  await context?.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  problems = [];
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
});
afterEach(async () => {
  await page.close();
});

const counts = (over: Partial<PlanCounts> = {}): PlanCounts => ({ ...emptyCounts(), ...over });

const record = (outcome: RunRecord['outcome'], minutesAgo: number, extra: Partial<RunRecord> = {}): RunRecord =>
  runRecord(outcome, { endedAt: Date.now() - minutesAgo * 60_000, durationMs: 42_000 }, extra);

function runningProgress(bytes: number): RunProgress {
  return {
    phase: 'propagating',
    listed: { path1: 12_345, path2: 12_301 },
    counts: counts({ copiesToPath2: 8, copiesToPath1: 2, conflicts: 1, bytesToPath2: 10_000_000 }),
    transfers: { toPath2: { bytes, totalBytes: 10_000_000, transfers: 3, totalTransfers: 8, errors: 0, checks: 0, deletes: 0, renames: 0 } },
  };
}

describe('the status page on the daemon', () => {
  let server: HttpServerHandle;
  let current: { startedAt: string; progress: RunProgress | null } | null = null;
  const state = () => join(dir, 'state-one');

  beforeAll(async () => {
    await mkdir(state(), { recursive: true });
    await appendHistory(join(state(), 'history.jsonl'), record('success', 30, { counts: counts({ copiesToPath2: 4, copiesToPath1: 1, bytesToPath2: 2_500_000 }) }));
    await writeTrashStats(join(state(), 'trash.json'), {
      path1: { files: 3, bytes: 1_200_000, oldestStamp: '20261120T101500Z' },
      path2: { files: 0, bytes: 0, oldestStamp: null },
      checkedAt: new Date().toISOString(),
    });
    const header = { format: 'rclonesync-snapshot', version: 1, path1: '/data', path2: 'x', compare: 'size,modtime', hashType: '', filtersHash: '', committedAt: new Date().toISOString() } as const;
    const entry = { size: 1, mtime: 1, hash: '' };
    const listing = new Map([['docs/report.conflict-path2-20261125T143200Z.docx', entry], ['docs/report.docx', entry]]);
    await writeSnapshot(join(state(), 'snapshot.jsonl'), { header, path1: listing, path2: new Map(listing) });
    const view: DaemonView = {
      pair: 'data__backup-0123456789ab',
      path1: '/data',
      path2: ':sftp,host=nas.local,user=me,pass=hunter2-secret:backup',
      schedule: '*/30 * * * *',
      timezone: undefined,
      historyFile: join(state(), 'history.jsonl'),
      trashStatsFile: join(state(), 'trash.json'),
      snapshotFile: join(state(), 'snapshot.jsonl'),
      maxAgeMs: () => 3_600_000,
      nextRun: () => new Date(Date.now() + 20 * 60_000),
      current: () => current,
    };
    server = await startHttpServer(0, view, new SyncMetrics(view.pair), quietLogger(), '127.0.0.1');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('shows the pair, its run in progress with a progress bar, and the run that ended without a reload', async () => {
    const response = await page.goto(`http://127.0.0.1:${server.port}/`);
    expect(response?.headers()['content-type']).toContain('text/html');
    expect(response?.headers()['content-security-policy']).toBe(STATUS_PAGE_CSP);
    const card = page.locator('article.pair');
    await expect.poll(() => card.count(), { timeout: 20_000 }).toBe(1);
    await expect.poll(() => card.locator('.badge').first().textContent(), { timeout: 20_000 }).toBe('healthy');
    const text = () => card.innerText();
    expect(await text()).toContain('data__backup-0123456789ab');
    expect(await text()).toContain('4 → path2, 1 → path1');
    expect(await text()).toContain('docs/report.conflict-path2-20261125T143200Z.docx');
    expect(await text()).toMatch(/path1\s+3 files, 1\.2 MB, oldest from Nov 20, 2026/);
    // The masked path, never the password.
    expect(await text()).toContain('pass=***');
    expect(await page.content()).not.toContain('hunter2');
    await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));

    current = { startedAt: new Date(Date.now() - 65_000).toISOString(), progress: runningProgress(5_000_000) };
    await expect.poll(() => card.locator('.badge.run').count(), { timeout: 20_000 }).toBe(1);
    await expect.poll(() => page.getAttribute('[role=progressbar]', 'aria-valuenow'), { timeout: 20_000 }).toBe('50');
    // The bar's width is set through CSSOM, which the page's CSP allows (a style attribute it would block).
    expect(await page.locator('.bar > div').evaluate((bar) => (bar as unknown as { style: { width: string } }).style.width)).toBe('50%');
    expect(await page.locator('.bar > div').evaluate((bar) => (bar as unknown as { offsetWidth: number }).offsetWidth)).toBeGreaterThan(100);
    expect(await text()).toContain('12,345 files on path1, 12,301 on path2');
    expect(await text()).toContain('3 of 8 files, 5.0 MB of 10 MB');
    current = { startedAt: current.startedAt, progress: runningProgress(7_500_000) };
    await expect.poll(() => page.getAttribute('[role=progressbar]', 'aria-valuenow'), { timeout: 20_000 }).toBe('75');

    current = null;
    await appendHistory(join(state(), 'history.jsonl'), record('failed', 0, { counts: counts({ copiesToPath2: 6 }), message: 'rclone: connection refused' }));
    await expect.poll(() => card.locator('.badge.run').count(), { timeout: 20_000 }).toBe(0);
    await expect.poll(() => card.locator('.last .outcome-failed').textContent(), { timeout: 20_000 }).toBe('failed');
    expect(await text()).toContain('rclone: connection refused');
    expect(await card.locator('.recent tbody tr').count()).toBe(2);
    expect(await page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(problems).toEqual([]);
  });
});

describe('the status page with a list of pairs', () => {
  let server: Server;
  let port: number;
  const now = Date.now();
  const iso = (minutes: number) => new Date(now + minutes * 60_000).toISOString();
  const pairs = [
    {
      pair: 'photos',
      path1: '/data/photos',
      path2: 'gdrive:Photos',
      health: { healthy: true, reason: `last run succeeded at ${iso(-12)}`, maxAgeMs: 3_600_000 },
      current: { since: iso(-1), pid: 42, host: 'nas', progress: runningProgress(6_400_000) },
      nextRun: iso(18),
      conflicts: { total: 1, newest: [{ path: '2026/holiday.conflict-path1-20261130T091500Z.jpg', stamp: '20261130T091500Z' }] },
      trash: { path1: { files: 12, bytes: 48_000_000, oldestStamp: '20261102T080000Z' }, path2: { files: 2, bytes: 3_100_000, oldestStamp: '20261128T120000Z' }, checkedAt: iso(-12) },
      runs: [
        record('success', 72, { counts: counts({ copiesToPath2: 31, bytesToPath2: 96_000_000 }) }),
        record('success', 42, { counts: counts({ copiesToPath1: 2, conflicts: 1, bytesToPath1: 4_000_000 }) }),
        record('success', 12, { counts: counts({ copiesToPath2: 5, deletesOnPath2: 1, bytesToPath2: 12_000_000 }) }),
      ],
    },
    {
      pair: 'documents',
      path1: '/data/documents',
      path2: 'dropbox:Documents',
      health: { healthy: false, reason: 'the last run was stopped by a safety gate (max-delete): 60% of path2 would be deleted', maxAgeMs: 3_600_000 },
      current: null,
      nextRun: iso(4),
      trash: null,
      runs: [
        record('success', 95, { counts: counts({ copiesToPath2: 3, bytesToPath2: 800_000 }) }),
        record('safety-stop', 5, { gate: 'max-delete', message: 'too many deletions: 60% of path2 (max 50%); SYNC_FORCE=true for one run' }),
      ],
    },
  ];

  beforeAll(async () => {
    server = createServer((request, response) => {
      if (request.url === '/status') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pairs }));
      } else {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': STATUS_PAGE_CSP }).end(STATUS_PAGE_HTML);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => {
      server.close(r);
      // The browser keeps its connection open.
      server.closeAllConnections();
    });
  });

  it('lists every pair with its health, and the one running with its progress', async () => {
    await page.goto(`http://127.0.0.1:${port}/`);
    await expect.poll(() => page.locator('article.pair').count(), { timeout: 20_000 }).toBe(2);
    expect(await page.locator('#summary').textContent()).toBe('2 pairs, 1 healthy, 1 running');
    const photos = page.locator('article[data-pair=photos]');
    const documents = page.locator('article[data-pair=documents]');
    expect(await photos.locator('.badge.run').count()).toBe(1);
    expect(await photos.locator('[role=progressbar]').getAttribute('aria-valuenow')).toBe('64');
    expect(await photos.innerText()).toContain('2026/holiday.conflict-path1-20261130T091500Z.jpg');
    expect(await documents.locator('.badge.bad').textContent()).toBe('unhealthy');
    expect(await documents.innerText()).toContain('safety gate (max-delete)');
    // Nothing wider than the phone: no sideways scrolling of the page.
    expect(await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const screenshot = process.env.RCLONESYNC_SCREENSHOT;
    if (screenshot) {
      const file = resolve(REPO_ROOT, screenshot);
      await mkdir(dirname(file), { recursive: true });
      await page.screenshot({ path: file, fullPage: true });
    }
    expect(problems).toEqual([]);
  });
});
