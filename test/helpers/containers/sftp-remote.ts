/**
 * The SFTP remote of the container tests: `rclone serve sftp` in a container of our own image on
 * a user-defined network, reached by a network alias (by DNS, or by /etc/hosts where the engine has
 * no DNS for aliases); and the sync container, a container of our image syncing /data with it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Wait, type GenericContainer, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { waitFor } from '../processes.ts';
import { obscure } from '../remotes/obscure.ts';
import { engineClient } from './engine.ts';
import { outputOf } from './output.ts';
import { AppContainer, chownTree, hostDir, type ExtraHost, type Resources } from './resources.ts';
import type { ReadySuite } from './suite.ts';

export interface SftpRemoteOptions {
  /** The network alias clients use as host name. */
  readonly alias?: string;
  /** The remote's name in SYNC_PATH2 (`<name>:share`). */
  readonly remoteName?: string;
  /** The folder under the served root that is synced. */
  readonly share?: string;
}

export class SftpRemote {
  readonly alias: string;
  readonly remoteName: string;
  readonly share: string;
  /** The host folder the server serves as its root (bind-mounted at /srv). */
  readonly root: string;
  readonly user = 'syncer';
  readonly password = `pw-${randomBytes(6).toString('hex')}`;
  private address: string | undefined;
  private started: StartedTestContainer | undefined;

  private constructor(root: string, options: SftpRemoteOptions) {
    this.root = root;
    this.alias = options.alias ?? 'sftp';
    this.remoteName = options.remoteName ?? 'nas';
    this.share = options.share ?? 'share';
  }

  /** The synced folder on the host. */
  get dir(): string {
    return join(this.root, this.share);
  }

  get container(): StartedTestContainer {
    if (!this.started) throw new Error('the sftp remote is not started');
    return this.started;
  }

  static async start(suite: ReadySuite, resources: Resources, network: StartedNetwork, options: SftpRemoteOptions = {}): Promise<SftpRemote> {
    const root = await hostDir(resources, 'sftp');
    const remote = new SftpRemote(root, options);
    await mkdir(remote.dir);
    await chownTree(remote.dir);
    const container = new AppContainer(suite.image)
      .withEntrypoint(['rclone'])
      .withCommand([
        'serve', 'sftp', '/srv',
        '--addr', ':2022',
        '--user', remote.user,
        '--pass', remote.password,
        // The tests change the served folder behind the server's back: no directory cache.
        '--dir-cache-time', '0s',
        '--log-level', 'INFO',
      ])
      .withEnvironment({ RCLONE_CONFIG: '/tmp/no-rclone.conf' })
      .withBindMounts([{ source: root, target: '/srv' }])
      .withWaitStrategy(Wait.forLogMessage(/listening on/i))
      .withStartupTimeout(60_000);
    if (suite.aliasDns) {
      container.withNetwork(network).withNetworkAliases(remote.alias);
    } else {
      remote.address = await freeAddress(network);
      container.withFixedAddress(network, remote.address, [remote.alias]);
    }
    remote.started = resources.container(await container.start());
    return remote;
  }

  /** `<name>:<share>` for SYNC_PATH2. */
  path(): string {
    return this.folder(this.share);
  }

  /** `<name>:<folder>`: another folder under the served root (`join(remote.root, folder)` on the host). */
  folder(folder: string): string {
    return `${this.remoteName}:${folder}`;
  }

  /** The remote, defined for rclone by environment variables only. */
  clientEnv(): Record<string, string> {
    const prefix = `RCLONE_CONFIG_${this.remoteName.toUpperCase()}_`;
    return {
      [`${prefix}TYPE`]: 'sftp',
      [`${prefix}HOST`]: this.alias,
      [`${prefix}PORT`]: '2022',
      [`${prefix}USER`]: this.user,
      [`${prefix}PASS`]: obscure(this.password),
      [`${prefix}KEY_USE_AGENT`]: 'false',
      // Fail fast while the remote is down (rclone's default connection timeout is a minute).
      RCLONE_CONTIMEOUT: '5s',
    };
  }

  /** /etc/hosts entries a client needs where the engine has no DNS for aliases. */
  extraHosts(): ExtraHost[] {
    return this.address ? [{ host: this.alias, ipAddress: this.address }] : [];
  }

  /** Joins a client container to the remote's network so that it reaches the remote by its alias. */
  connect(container: GenericContainer, network: StartedNetwork): GenericContainer {
    return container.withNetwork(network).withExtraHosts(this.extraHosts()).withEnvironment(this.clientEnv());
  }

  /** An outage: the server's container stops (it is not removed). */
  async stop(): Promise<void> {
    const client = await engineClient();
    await client.container.dockerode.getContainer(this.container.getId()).stop({ t: 0 });
  }

  /** The same container again, after `stop`; resolves when it listens. */
  async restart(): Promise<void> {
    const client = await engineClient();
    const handle = client.container.dockerode.getContainer(this.container.getId());
    const output = await outputOf(this.container.getId());
    const before = countMatches(output.stdout + output.stderr, /listening on/gi);
    await handle.start();
    await waitFor(
      'the sftp server to listen again',
      async () => {
        const { stdout, stderr } = await outputOf(this.container.getId());
        return countMatches(stdout + stderr, /listening on/gi) > before;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  }
}

function countMatches(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}

/** An address in the network's subnet that the engine is unlikely to hand out (it counts up from .2). */
async function freeAddress(network: StartedNetwork): Promise<string> {
  const client = await engineClient();
  const info = (await client.container.dockerode.getNetwork(network.getId()).inspect()) as { IPAM?: { Config?: { Subnet?: string }[] } };
  const subnet = info.IPAM?.Config?.map((c) => c.Subnet).find((s) => s && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(s));
  if (!subnet) throw new Error(`network ${network.getName()} has no IPv4 subnet: ${JSON.stringify(info.IPAM)}`);
  const [base, bits] = subnet.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  const start = base.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
  const offset = Math.min(size - 2, 200 + Math.floor(Math.random() * Math.max(1, Math.min(50, size - 202))));
  const n = start + offset;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface SyncContainerOptions {
  readonly command?: string[];
  readonly env?: Record<string, string>;
  readonly data?: string;
  /** A host folder or a named volume for /state. */
  readonly state?: string;
  readonly user?: string;
  readonly extraBinds?: { source: string; target: string; mode?: 'rw' | 'ro' }[];
}

/** A container of our image: path1 /data (bind mount), state /state, the remote by environment only. */
export function syncContainer(suite: ReadySuite, remote: SftpRemote, network: StartedNetwork, options: SyncContainerOptions = {}): AppContainer {
  const container = new AppContainer(suite.image)
    .withCommand(options.command ?? ['run'])
    .withEnvironment({ SYNC_PATH2: remote.path(), LOG_FORMAT: 'json', TZ: 'UTC', ...options.env });
  remote.connect(container, network);
  const binds: { source: string; target: string; mode?: 'rw' | 'ro' }[] = [...(options.extraBinds ?? [])];
  if (options.data) binds.push({ source: options.data, target: '/data' });
  if (options.state) binds.push({ source: options.state, target: '/state' });
  container.withBindMounts(binds);
  if (options.user) container.withUser(options.user);
  return container;
}
