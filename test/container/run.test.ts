/**
 * One-shot `rclonesync run` in a container of our image, against an SFTP server in another
 * container of our image (`rclone serve sftp`) on a user-defined network. The sync container knows
 * the remote only through RCLONE_CONFIG_<NAME>_* variables and reaches it by its network alias.
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { type ExitedContainer, exitReport, inspect, runToExit } from '../helpers/containers/output.ts';
import { AppContainer, chownTree, hostDir, useNetwork, useResources } from '../helpers/containers/resources.ts';
import { SftpRemote, syncContainer } from '../helpers/containers/sftp-remote.ts';
import { containerSuite, describeWithContainers } from '../helpers/containers/suite.ts';
import { digestTree, treeOf } from '../helpers/trees.ts';

const suite = await containerSuite();

function summaryOf(result: ExitedContainer): Record<string, unknown> | undefined {
  return result.logs.findLast((l) => l.summary === true);
}

describeWithContainers(suite, 'rclonesync run in a container', (ready) => {
  const resources = useResources();
  const network = useNetwork(resources);
  let remote: SftpRemote;

  beforeAll(async () => {
    remote = await SftpRemote.start(ready, resources, network());
  });

  it('(1) syncs a bind-mounted /data and an SFTP server in another container both ways, then carries an edit and a deletion', { timeout: 120_000 }, async () => {
    const data = await hostDir(resources, 'data');
    const state = await hostDir(resources, 'state');
    const share = join(remote.root, 'both-ways');
    await mkdir(join(share, 'remote dir'), { recursive: true });
    await writeFile(join(share, 'from-remote.txt'), 'written on the server\n');
    await writeFile(join(share, 'remote dir', 'r.bin'), Buffer.alloc(70_000, 7));
    await chownTree(share);
    await mkdir(join(data, 'sub', 'dir'), { recursive: true });
    await writeFile(join(data, 'from-local.txt'), 'written in /data\n');
    await writeFile(join(data, 'a file with spaces.txt'), 'spaces\n');
    await writeFile(join(data, 'sub', 'dir', 'nested.bin'), Buffer.alloc(50_000, 3));
    await chownTree(data);

    const env = { SYNC_PATH2: remote.folder('both-ways') };
    const first = await runToExit(resources, syncContainer(ready, remote, network(), { data, state, env }));
    expect(first.exitCode, exitReport(first)).toBe(0);

    const expected = ['a file with spaces.txt', 'from-local.txt', 'from-remote.txt', 'remote dir/r.bin', 'sub/dir/nested.bin'];
    const local = await digestTree(data);
    expect(Object.keys(local)).toEqual(expected);
    expect(await digestTree(share)).toEqual(local);
    expect(await readFile(join(data, 'from-remote.txt'), 'utf8')).toBe('written on the server\n');
    expect(await readFile(join(share, 'from-local.txt'), 'utf8')).toBe('written in /data\n');
    expect(summaryOf(first), exitReport(first)).toMatchObject({ outcome: 'success', exitCode: 0, resync: true, copiesToPath1: 2, copiesToPath2: 3, conflicts: 0 });
    // Files written in /data belong to the container's user (the image's default, 1000).
    expect((await stat(join(data, 'from-remote.txt'))).uid).toBe(1000);

    // The next run is a normal one (no resync): an edit on the server and a deletion in /data travel.
    await writeFile(join(share, 'from-remote.txt'), 'edited on the server, longer than before\n');
    await chownTree(share);
    await rm(join(data, 'sub', 'dir', 'nested.bin'));
    const second = await runToExit(resources, syncContainer(ready, remote, network(), { data, state, env }));
    expect(second.exitCode, exitReport(second)).toBe(0);
    expect(summaryOf(second), exitReport(second)).toMatchObject({ outcome: 'success', resync: false, copiesToPath1: 1, copiesToPath2: 0, deletesOnPath2: 1 });
    expect(await readFile(join(data, 'from-remote.txt'), 'utf8')).toBe('edited on the server, longer than before\n');
    const after = await digestTree(data);
    expect(Object.keys(after)).toEqual(['a file with spaces.txt', 'from-local.txt', 'from-remote.txt', 'remote dir/r.bin']);
    expect(await digestTree(share)).toEqual(after);
  });

  it('(5) runs as a non-root user (--user 1234:1234) on host folders owned by that user', { timeout: 120_000 }, async () => {
    const owner = { uid: 1234, gid: 1234 };
    const data = await hostDir(resources, 'data-1234', owner);
    const state = await hostDir(resources, 'state-1234', owner);
    const share = join(remote.root, 'nonroot');
    await mkdir(share);
    await writeFile(join(share, 'from-remote.txt'), 'remote\n');
    await chownTree(share);
    await writeFile(join(data, 'from-local.txt'), 'local\n');
    await chownTree(data, owner);

    const result = await runToExit(
      resources,
      syncContainer(ready, remote, network(), { data, state, user: '1234:1234', env: { SYNC_PATH2: remote.folder('nonroot') } }),
    );
    expect(result.exitCode, exitReport(result)).toBe(0);
    expect(await digestTree(data)).toEqual(await digestTree(share));
    const tree = await treeOf(data);
    expect([...tree.keys()].sort()).toEqual(['from-local.txt', 'from-remote.txt']);
    // What the container wrote belongs to 1234: the copied file and the pair's state.
    expect(tree.get('from-remote.txt')?.uid).toBe(1234);
    const stateTree = await treeOf(state);
    const history = [...stateTree.entries()].find(([name]) => name.endsWith('/history.jsonl'));
    expect(history, `state: ${[...stateTree.keys()].join(', ')}`).toBeDefined();
    expect(history![1].uid).toBe(1234);
    expect((await inspect(result.container)).Config.User).toBe('1234:1234');
  });

  it('(6) runs with a read-only root filesystem, a tmpfs /tmp and no capabilities (as the compose file does)', { timeout: 120_000 }, async () => {
    const data = await hostDir(resources, 'data-ro');
    const state = await hostDir(resources, 'state-ro');
    const share = join(remote.root, 'readonly');
    await mkdir(share);
    await writeFile(join(share, 'from-remote.txt'), 'remote\n');
    await chownTree(share);
    await writeFile(join(data, 'from-local.txt'), 'local\n');
    await chownTree(data);

    const container = syncContainer(ready, remote, network(), { data, state, env: { SYNC_PATH2: remote.folder('readonly') } })
      .withReadonlyRootfs()
      .withTmpFs({ '/tmp': 'rw,mode=1777,size=64m' })
      .withDroppedCapabilities('ALL')
      .withSecurityOpt('no-new-privileges:true');
    const result = await runToExit(resources, container);
    expect(result.exitCode, exitReport(result)).toBe(0);
    expect(Object.keys(await digestTree(data))).toEqual(['from-local.txt', 'from-remote.txt']);
    expect(await digestTree(share)).toEqual(await digestTree(data));
    const info = await inspect(result.container);
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
  });

  it('(6b) copies a read-only RCLONE_CONFIG into the state volume and syncs with it (read-only root filesystem)', { timeout: 120_000 }, async () => {
    const data = await hostDir(resources, 'data-conf');
    const state = await hostDir(resources, 'state-conf');
    const configDir = await hostDir(resources, 'conf');
    const share = join(remote.root, 'conffile');
    await mkdir(share);
    await writeFile(join(share, 'from-remote.txt'), 'remote\n');
    await chownTree(share);
    await writeFile(join(data, 'from-local.txt'), 'local\n');
    await chownTree(data);
    // The remote in a config file instead of the environment, mounted read-only like a Kubernetes Secret.
    const env = remote.clientEnv();
    const prefix = `RCLONE_CONFIG_${remote.remoteName.toUpperCase()}_`;
    const section = Object.entries(env)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => `${key.slice(prefix.length).toLowerCase()} = ${value}`)
      .join('\n');
    await writeFile(join(configDir, 'rclone.conf'), `[fromfile]\n${section}\n`);
    await chownTree(configDir);

    const container = syncContainer(ready, remote, network(), {
      data,
      state,
      env: { SYNC_PATH2: 'fromfile:conffile', RCLONE_CONFIG: '/config/rclone.conf' },
      extraBinds: [{ source: configDir, target: '/config', mode: 'ro' }],
    })
      .withReadonlyRootfs()
      .withTmpFs({ '/tmp': 'rw,mode=1777,size=64m' });
    const result = await runToExit(resources, container);
    expect(result.exitCode, exitReport(result)).toBe(0);
    expect(Object.keys(await digestTree(data))).toEqual(['from-local.txt', 'from-remote.txt']);
    expect(await digestTree(share)).toEqual(await digestTree(data));
    // The writable copy rclone used is in the state folder: the source's settings (plus what rclone
    // saved itself, such as the server's detected shell), while the read-only source is unchanged.
    const source = await readFile(join(configDir, 'rclone.conf'), 'utf8');
    const copy = await readFile(join(state, 'rclone.conf'), 'utf8');
    for (const line of source.trim().split('\n')) expect(copy.split('\n')).toContain(line);
    expect(source).toBe(`[fromfile]\n${section}\n`);
    expect(((await stat(join(state, 'rclone.conf'))).mode & 0o777).toString(8)).toBe('600');
  });

  it('refuses to start without SYNC_PATH2: the default command exits 2 with a message naming the setting', { timeout: 120_000 }, async () => {
    const state = await hostDir(resources, 'state-misconf');
    // The image's default command (daemon), no remote at all.
    const result = await runToExit(resources, new AppContainer(ready.image).withBindMounts([{ source: state, target: '/state' }]).withEnvironment({ LOG_FORMAT: 'json' }));
    expect(result.exitCode, exitReport(result)).toBe(2);
    expect(result.stderr).toMatch(/SYNC_PATH2 \(--path2\) is required/);
  });
});
