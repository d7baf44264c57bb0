/**
 * The container's life cycle as an engine drives it: `docker stop` in the middle of a slow
 * transfer (SIGTERM, then SIGKILL after the grace period), and a container recreated on the same
 * state volume (an image update).
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { engineClient } from '../helpers/containers/engine.ts';
import { dockerStop, exitReport, runToExit, tailOf } from '../helpers/containers/output.ts';
import { chownTree, hostDir, uniqueName, useNetwork, useResources } from '../helpers/containers/resources.ts';
import { SftpRemote, syncContainer } from '../helpers/containers/sftp-remote.ts';
import { containerSuite, describeWithContainers } from '../helpers/containers/suite.ts';
import { waitFor } from '../helpers/processes.ts';
import { digestTree, treeOf } from '../helpers/trees.ts';

const suite = await containerSuite();

const exists = (path: string) => access(path).then(() => true, () => false);

describeWithContainers(suite, 'the sync container stopped and recreated', (ready) => {
  const resources = useResources();
  const network = useNetwork(resources);
  let remote: SftpRemote;

  beforeAll(async () => {
    remote = await SftpRemote.start(ready, resources, network());
  });

  it('(3) `docker stop` during a slow transfer ends the daemon within the grace period with exit code 0; the next start converges', { timeout: 180_000 }, async () => {
    const data = await hostDir(resources, 'data');
    const state = await hostDir(resources, 'state');
    const share = join(remote.root, 'stopped');
    await mkdir(share);
    await writeFile(join(share, 'remote-side.txt'), 'from the remote\n');
    await chownTree(share);
    // ~3 MB at 100 kB/s: half a minute of transfer, far longer than the stop takes.
    for (let i = 1; i <= 3; i++) await writeFile(join(data, `big-${i}.bin`), randomBytes(1024 * 1024));
    await writeFile(join(data, 'small.txt'), 'small\n');
    await chownTree(data);
    const env = { SYNC_PATH2: remote.folder('stopped') };

    const container = syncContainer(ready, remote, network(), {
      command: ['daemon'],
      data,
      state,
      env: { ...env, SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RCLONE_ARGS: '--bwlimit 100k' },
    });
    const daemon = resources.container(await container.start());
    // In the middle of the transfer: the big files have started to arrive on the remote.
    await waitFor(
      'the transfer to be under way',
      async () => {
        const names = await readdir(share);
        for (const name of names.filter((n) => n.startsWith('big-'))) if ((await stat(join(share, name))).size > 0) return true;
        return undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, details: () => tailOf(daemon) },
    );
    const pairs = (await readdir(state, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(pairs).toHaveLength(1);
    const pairDir = join(state, pairs[0]!);
    expect(await exists(join(pairDir, 'run.lock')), 'the run holds the lock').toBe(true);

    const stopped = await dockerStop(daemon, 10);
    const logs = await tailOf(daemon, 30);
    expect(stopped.exitCode, logs).toBe(0);
    expect(stopped.ms, logs).toBeLessThan(10_000);
    expect(logs).toMatch(/"msg":"daemon stopped"/);
    // The stop did not let the transfer finish: not everything arrived.
    const remoteAfterStop = await treeOf(share);
    const complete = ['big-1.bin', 'big-2.bin', 'big-3.bin'].filter((n) => remoteAfterStop.get(n)?.size === 1024 * 1024);
    expect(complete.length, `on the remote after the stop: ${[...remoteAfterStop.keys()].join(', ')}`).toBeLessThan(3);
    // The lock is released and the cancelled run recorded.
    expect(await exists(join(pairDir, 'run.lock'))).toBe(false);
    expect(await exists(join(pairDir, 'run.owner'))).toBe(false);
    const history = (await readFile(join(pairDir, 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { outcome: string });
    expect(history.at(-1)?.outcome).not.toBe('success');

    // The next start (full speed, a fresh container) converges: both sides equal, no conflict copies.
    const next = await runToExit(resources, syncContainer(ready, remote, network(), { data, state, env }));
    expect(next.exitCode, exitReport(next)).toBe(0);
    const local = await digestTree(data);
    expect(Object.keys(local)).toEqual(['big-1.bin', 'big-2.bin', 'big-3.bin', 'remote-side.txt', 'small.txt']);
    expect(await digestTree(share)).toEqual(local);
    expect(Object.keys(local).some((n) => n.includes('.conflict-'))).toBe(false);
    expect(next.logs.findLast((l) => l.summary === true), exitReport(next)).toMatchObject({ outcome: 'success', conflicts: 0 });
  });

  it('(4) a new container on the same state volume does not resync: a deletion made after the recreation propagates', { timeout: 120_000 }, async () => {
    const client = await engineClient();
    const volume = resources.volume(uniqueName('rclonesync-test-state'));
    await client.container.dockerode.createVolume({ Name: volume });
    const data = await hostDir(resources, 'data-vol');
    const share = join(remote.root, 'recreated');
    await mkdir(share);
    await writeFile(join(share, 'keep.txt'), 'keep\n');
    await writeFile(join(share, 'doomed.txt'), 'to be deleted after the recreation\n');
    await chownTree(share);
    await writeFile(join(data, 'local.txt'), 'local\n');
    await chownTree(data);
    const options = { data, state: volume, env: { SYNC_PATH2: remote.folder('recreated') } };

    const first = await runToExit(resources, syncContainer(ready, remote, network(), options));
    expect(first.exitCode, exitReport(first)).toBe(0);
    expect(first.logs.findLast((l) => l.summary === true)).toMatchObject({ outcome: 'success', resync: true });
    expect(Object.keys(await digestTree(data))).toEqual(['doomed.txt', 'keep.txt', 'local.txt']);
    // The first container is gone for good; only the volume remains.
    await first.container.stop({ timeout: 0, remove: true, removeVolumes: false });

    await rm(join(data, 'doomed.txt'));
    const second = await runToExit(resources, syncContainer(ready, remote, network(), options));
    expect(second.exitCode, exitReport(second)).toBe(0);
    expect(second.stdout).not.toMatch(/no previous state for this pair/);
    expect(second.logs.findLast((l) => l.summary === true), exitReport(second)).toMatchObject({ outcome: 'success', resync: false, deletesOnPath2: 1, copiesToPath1: 0, copiesToPath2: 0 });
    expect(Object.keys(await digestTree(share))).toEqual(['keep.txt', 'local.txt']);
    expect(await digestTree(share)).toEqual(await digestTree(data));

    // `status` in a third container reads the same volume: both runs, the first a resync.
    const status = await runToExit(resources, syncContainer(ready, remote, network(), { ...options, command: ['status', '--json'] }));
    expect(status.exitCode, exitReport(status)).toBe(0);
    const report = JSON.parse(status.stdout) as { pairs: { runs: { outcome: string; resync: boolean }[] }[] };
    expect(report.pairs).toHaveLength(1);
    expect(report.pairs[0]!.runs.map((r) => [r.outcome, r.resync])).toEqual([
      ['success', true],
      ['success', false],
    ]);
  });
});
