/**
 * The image's default command, `rclonesync daemon`, on a seconds-level schedule against an SFTP
 * server in another container: it turns healthy, keeps syncing on its schedule, stays up through
 * an outage of the remote (health turns 1) and recovers when the remote is back.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { inspect, logLinesOf, runHealthcheck, tailOf, withTestHealthcheck } from '../helpers/containers/output.ts';
import { chownTree, hostDir, useNetwork, useResources } from '../helpers/containers/resources.ts';
import { SftpRemote, syncContainer } from '../helpers/containers/sftp-remote.ts';
import { containerSuite, describeWithContainers } from '../helpers/containers/suite.ts';
import { waitFor } from '../helpers/processes.ts';
import { digestTree } from '../helpers/trees.ts';

const suite = await containerSuite();

describeWithContainers(suite, 'rclonesync daemon in a container', (ready) => {
  const resources = useResources();
  const network = useNetwork(resources);
  let remote: SftpRemote;

  beforeAll(async () => {
    remote = await SftpRemote.start(ready, resources, network());
  });

  it('(2) runs on its schedule, turns healthy, survives a remote outage (health 1) and recovers (health 0)', { timeout: 240_000 }, async () => {
    const data = await hostDir(resources, 'data');
    const state = await hostDir(resources, 'state');
    await writeFile(join(data, 'local-1.txt'), 'local\n');
    await chownTree(data);
    await writeFile(join(remote.dir, 'remote-1.txt'), 'remote\n');
    await chownTree(remote.dir);

    const container = syncContainer(ready, remote, network(), {
      command: ['daemon'],
      data,
      state,
      // Every 3 seconds; health allows a generous age so that only failures (not a slow machine) turn it.
      // While the remote's address is gone each connection attempt takes ~3 s (no route to host):
      // two attempts instead of rclone's ten keep a failing run short.
      env: { SYNC_SCHEDULE: '*/3 * * * * *', SYNC_HEALTH_MAX_AGE: '2m', RCLONE_LOW_LEVEL_RETRIES: '2' },
    });
    const daemon = resources.container(await withTestHealthcheck(container).start());
    const logs = () => tailOf(daemon);
    const health = async () => {
      const result = await daemon.exec(['rclonesync', 'health']);
      return { exitCode: result.exitCode, output: result.output.trim() };
    };

    // Healthy after the first run, both sides merged.
    const healthy = await waitFor('`rclonesync health` to exit 0', async () => ((await health()).exitCode === 0 ? true : undefined), { timeoutMs: 60_000, intervalMs: 1_000, details: logs });
    expect(healthy).toBe(true);
    expect(Object.keys(await digestTree(data))).toEqual(['local-1.txt', 'remote-1.txt']);
    expect(await digestTree(remote.dir)).toEqual(await digestTree(data));
    // The image's own HEALTHCHECK (run by the engine) agrees.
    const check = await runHealthcheck(ready, daemon);
    expect(check, check.output).toMatchObject({ status: 'healthy', exitCode: 0 });

    // On its schedule: later runs are started by the schedule and pick up a new file without a restart.
    await writeFile(join(data, 'local-2.txt'), 'written while the daemon runs\n');
    await chownTree(data);
    await waitFor('local-2.txt on the remote', async () => (await readFile(join(remote.dir, 'local-2.txt'), 'utf8').catch(() => undefined)) === 'written while the daemon runs\n', {
      timeoutMs: 30_000,
      details: logs,
    });
    const scheduled = await waitFor(
      'two scheduled runs',
      async () => {
        const starts = (await logLinesOf(daemon)).filter((l) => l.msg === 'starting a scheduled run');
        return starts.length >= 2 ? starts : undefined;
      },
      { timeoutMs: 30_000, details: logs },
    );
    const times = scheduled.map((l) => (typeof l.time === 'number' ? l.time : Date.parse(String(l.time))));
    expect(times.every(Number.isFinite), JSON.stringify(scheduled)).toBe(true);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!, 'scheduled runs ~3 s apart').toBeGreaterThanOrEqual(2_500);
    // Every scheduled start is on a multiple of 3 seconds (cron "*/3" in the seconds field).
    for (const t of times) expect(new Date(t).getUTCSeconds() % 3).toBe(0);

    // Outage: the remote's container stops. Health turns 1, the daemon keeps running.
    const startedAt = (await inspect(daemon)).State.StartedAt;
    await remote.stop();
    const sick = await waitFor(
      '`rclonesync health` to exit 1 while the remote is down',
      async () => {
        const result = await health();
        return result.exitCode === 1 ? result : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, details: logs },
    );
    expect(sick.output).toMatch(/last run (failed|safety-stop)/);
    const failedRuns = await waitFor(
      'two failed runs in a row',
      async () => {
        const lines = await logLinesOf(daemon);
        const summaries = lines.filter((l) => l.summary === true);
        const failing = summaries.slice(summaries.findLastIndex((l) => l.outcome === 'success') + 1);
        return failing.length >= 2 ? failing : undefined;
      },
      { timeoutMs: 40_000, details: logs },
    );
    expect(failedRuns.every((l) => l.outcome === 'failed')).toBe(true);
    const during = await inspect(daemon);
    expect(during.State.Running, await logs()).toBe(true);
    expect(during.State.StartedAt).toBe(startedAt);
    const sickCheck = await runHealthcheck(ready, daemon);
    expect(sickCheck, sickCheck.output).toMatchObject({ status: 'unhealthy', exitCode: 1 });

    // Recovery: the same remote comes back; a file written meanwhile syncs and health is 0 again.
    await writeFile(join(data, 'during-outage.txt'), 'written while the remote was down\n');
    await chownTree(data);
    await remote.restart();
    await waitFor(
      'during-outage.txt on the remote and health 0',
      async () =>
        (await readFile(join(remote.dir, 'during-outage.txt'), 'utf8').catch(() => undefined)) === 'written while the remote was down\n' && (await health()).exitCode === 0,
      { timeoutMs: 60_000, intervalMs: 1_000, details: logs },
    );
    const after = await inspect(daemon);
    expect(after.State.Running).toBe(true);
    expect(after.State.StartedAt, 'the daemon was not restarted').toBe(startedAt);
    expect(after.RestartCount ?? 0).toBe(0);
    const wellCheck = await runHealthcheck(ready, daemon);
    expect(wellCheck, wellCheck.output).toMatchObject({ status: 'healthy', exitCode: 0 });
    expect(Object.keys(await digestTree(data)).sort()).toEqual(['during-outage.txt', 'local-1.txt', 'local-2.txt', 'remote-1.txt']);
  });
});
