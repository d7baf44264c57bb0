/**
 * What a monitoring system sees of the appliance: /healthz, /status and /metrics on the mapped
 * SYNC_HTTP_PORT, and healthchecks.io-style pings (SYNC_PING_URL) sent from the container to a
 * receiver in this test process (the container reaches the host through the engine's gateway).
 */
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inspect, tailOf } from '../helpers/containers/output.ts';
import { chownTree, hostDir, hostGateway, useNetwork, useResources } from '../helpers/containers/resources.ts';
import { SftpRemote, syncContainer } from '../helpers/containers/sftp-remote.ts';
import { containerSuite, describeWithContainers } from '../helpers/containers/suite.ts';
import { waitFor } from '../helpers/processes.ts';
import { digestTree } from '../helpers/trees.ts';
import type { StartedTestContainer } from 'testcontainers';

const suite = await containerSuite();

interface Ping {
  readonly method: string;
  readonly path: string;
  readonly body: string;
  readonly at: number;
}

/** One sample of a Prometheus text exposition: name{labels} value. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describeWithContainers(suite, 'the daemon container monitored over HTTP and pings', (ready) => {
  const resources = useResources();
  const network = useNetwork(resources);
  const pings: Ping[] = [];
  let receiver: Server;
  let daemon: StartedTestContainer;
  let data: string;
  let remote: SftpRemote;
  let base: string;

  beforeAll(async () => {
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        pings.push({ method: request.method ?? '', path: request.url ?? '', body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
        response.end('OK');
      });
    });
    // All interfaces: the container comes in through the engine's bridge, not loopback.
    receiver.listen(0, '0.0.0.0');
    await once(receiver, 'listening');
    const port = (receiver.address() as AddressInfo).port;

    remote = await SftpRemote.start(ready, resources, network());
    data = await hostDir(resources, 'data');
    const state = await hostDir(resources, 'state');
    await writeFile(join(data, 'one.txt'), 'one\n');
    await writeFile(join(data, 'two.bin'), Buffer.alloc(12_345, 1));
    await chownTree(data);
    await writeFile(join(remote.dir, 'three.txt'), 'three\n');
    await chownTree(remote.dir);

    const gateway = hostGateway(ready);
    const container = syncContainer(ready, remote, network(), {
      command: ['daemon'],
      data,
      state,
      env: {
        // Once at start; the next scheduled run is far away (1 January).
        SYNC_SCHEDULE: '0 0 1 1 *',
        SYNC_HTTP_PORT: '8080',
        SYNC_PING_URL: `http://${gateway.host}:${port}/ping/0f3c-check`,
      },
    })
      .withExtraHosts(gateway.extraHosts)
      .withExposedPorts(8080);
    daemon = resources.container(await container.start());
    base = `http://${daemon.getHost()}:${daemon.getMappedPort(8080)}`;
    await waitFor('the first run to succeed (/healthz 200)', async () => (await fetch(`${base}/healthz`)).status === 200, {
      timeoutMs: 60_000,
      details: () => tailOf(daemon),
    });
  });

  afterAll(async () => {
    receiver?.closeAllConnections();
    await new Promise((r) => receiver?.close(r));
  });

  it('(7) /metrics and /status on the mapped SYNC_HTTP_PORT report the run that just happened', async () => {
    expect(await digestTree(remote.dir)).toEqual(await digestTree(data));

    const healthz = await fetch(`${base}/healthz`);
    expect(healthz.status).toBe(200);
    expect(await healthz.json()).toMatchObject({ status: 'ok', healthy: true });

    const statusResponse = await fetch(`${base}/status`);
    expect(statusResponse.status).toBe(200);
    const status = (await statusResponse.json()) as Record<string, unknown> & { runs: Record<string, unknown>[] };
    expect(status).toMatchObject({ path1: '/data', path2: remote.path(), schedule: '0 0 1 1 *', running: false, health: { healthy: true } });
    expect(String(status.nextRun)).toMatch(/^\d{4}-01-01T00:00:00\.000Z$/);
    expect(status.runs).toHaveLength(1);
    expect(status.runs[0]).toMatchObject({
      outcome: 'success',
      exitCode: 0,
      resync: true,
      counts: { copiesToPath2: 2, copiesToPath1: 1, deletesOnPath1: 0, deletesOnPath2: 0, conflicts: 0 },
    });

    const metricsResponse = await fetch(`${base}/metrics`);
    expect(metricsResponse.status).toBe(200);
    expect(metricsResponse.headers.get('content-type')).toMatch(/^text\/plain/);
    const metrics = await metricsResponse.text();
    expect(sample(metrics, 'rclonesync_runs_total', { outcome: 'success' }), metrics).toBe(1);
    expect(sample(metrics, 'rclonesync_runs_total', { outcome: 'failed' })).toBe(0);
    expect(sample(metrics, 'rclonesync_files_copied_total', { to: 'path2' })).toBe(2);
    expect(sample(metrics, 'rclonesync_files_copied_total', { to: 'path1' })).toBe(1);
    expect(sample(metrics, 'rclonesync_bytes_copied_total', { to: 'path2' })).toBe(4 + 12_345);
    expect(sample(metrics, 'rclonesync_bytes_copied_total', { to: 'path1' })).toBe(6);
    expect(sample(metrics, 'rclonesync_last_run_exit_code')).toBe(0);
    expect(sample(metrics, 'rclonesync_healthy')).toBe(1);
    expect(sample(metrics, 'rclonesync_run_in_progress')).toBe(0);
    const lastSuccess = sample(metrics, 'rclonesync_last_success_timestamp_seconds') ?? 0;
    expect(Math.abs(Date.now() / 1000 - lastSuccess)).toBeLessThan(120);
    expect(sample(metrics, 'rclonesync_next_run_timestamp_seconds')).toBe(Date.parse(String(status.nextRun)) / 1000);
    // Every sample carries the pair, as /status names it.
    expect(metrics).toContain(`pair="${String(status.pair)}"`);
    // And the image's own HEALTHCHECK (what `docker ps` shows) is the same verdict's command.
    expect((await inspect(daemon)).Config.Healthcheck?.Test).toEqual(['CMD', 'rclonesync', 'health']);
  });

  it('(8) sends <url>/start when the run starts, then <url> with the summary when it succeeded', async () => {
    await waitFor('the success ping', async () => pings.some((p) => p.path === '/ping/0f3c-check' && p.method === 'POST'), { timeoutMs: 30_000, details: () => tailOf(daemon) });
    expect(pings.map((p) => `${p.method} ${p.path}`)).toEqual(['GET /ping/0f3c-check/start', 'POST /ping/0f3c-check']);
    expect(pings[0]!.at).toBeLessThanOrEqual(pings[1]!.at);
    expect(pings[1]!.body).toMatch(/^run success \(resync\) in \d+(\.\d+)?s: 2 copied to path2, 1 copied to path1, 0 deleted, 0 conflicts/);
  });
});
