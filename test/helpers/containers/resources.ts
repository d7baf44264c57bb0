/**
 * Everything a container test file starts (containers, networks, volumes, host folders), removed
 * in afterAll even when a test failed; host folders for bind mounts owned by the containers' uid;
 * and how a container reaches the machine running the tests.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll } from 'vitest';
import { engineClient } from './engine.ts';
import type { ReadySuite } from './suite.ts';

/** An /etc/hosts entry for a container (testcontainers' ExtraHost, which it does not export). */
export interface ExtraHost {
  readonly host: string;
  readonly ipAddress: string;
}

/** GenericContainer with the two HostConfig settings testcontainers has no method for. */
export class AppContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    // Our image has a HEALTHCHECK, which testcontainers would wait for (it starts unhealthy).
    this.withWaitStrategy(Wait.forListeningPorts());
  }

  withReadonlyRootfs(): this {
    this.hostConfig.ReadonlyRootfs = true;
    return this;
  }

  /** Joins the network at a fixed address (kept across stop/start), with aliases. */
  withFixedAddress(network: StartedNetwork, address: string, aliases: string[]): this {
    this.networkMode = network.getName();
    this.createOpts.NetworkingConfig = {
      EndpointsConfig: { [network.getName()]: { IPAMConfig: { IPv4Address: address }, Aliases: aliases } },
    };
    return this;
  }
}

/** Everything a test file starts, removed in afterAll even when a test failed. */
export class Resources {
  private readonly containers: StartedTestContainer[] = [];
  private readonly networks: StartedNetwork[] = [];
  private readonly dirs: string[] = [];
  private readonly volumes: string[] = [];
  private readonly cleanups: (() => Promise<unknown>)[] = [];

  container<T extends StartedTestContainer>(started: T): T {
    this.containers.push(started);
    return started;
  }

  network(network: StartedNetwork): StartedNetwork {
    this.networks.push(network);
    return network;
  }

  dir(path: string): string {
    this.dirs.push(path);
    return path;
  }

  volume(name: string): string {
    this.volumes.push(name);
    return name;
  }

  onCleanup(cleanup: () => Promise<unknown>): void {
    this.cleanups.push(cleanup);
  }

  async cleanup(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    await Promise.all(this.containers.splice(0).map((c) => c.stop({ timeout: 0, remove: true, removeVolumes: true }).catch(() => undefined)));
    const client = await engineClient().catch(() => undefined);
    for (const name of this.volumes.splice(0)) await client?.container.dockerode.getVolume(name).remove().catch(() => undefined);
    for (const network of this.networks.splice(0)) await network.stop().catch(() => undefined);
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true }).catch(() => undefined)));
  }
}

/** A Resources whose cleanup runs in afterAll of the calling describe. */
export function useResources(): Resources {
  const resources = new Resources();
  afterAll(() => resources.cleanup(), 120_000);
  return resources;
}

/**
 * A host folder for a bind mount, owned by uid:gid inside the containers. As root we chown it;
 * otherwise we cannot, and open it to everyone instead.
 */
export async function hostDir(resources: Resources, name: string, owner: { uid: number; gid: number } = { uid: 1000, gid: 1000 }): Promise<string> {
  const dir = resources.dir(await mkdtemp(join(tmpdir(), `rs-ct-${name}-`)));
  if (process.getuid?.() === 0) await chown(dir, owner.uid, owner.gid);
  else await chmod(dir, 0o777);
  return dir;
}

/** Recursively chown what a test wrote into a bind-mounted folder (as root; otherwise a no-op). */
export async function chownTree(path: string, owner: { uid: number; gid: number } = { uid: 1000, gid: 1000 }): Promise<void> {
  if (process.getuid?.() !== 0) return;
  await chown(path, owner.uid, owner.gid);
  const info = await lstat(path);
  if (!info.isDirectory()) return;
  for (const entry of await readdir(path)) await chownTree(join(path, entry), owner);
}

/** How a container reaches a port of the machine running the tests. */
export function hostGateway(suite: ReadySuite): { host: string; extraHosts: ExtraHost[] } {
  if (suite.engine === 'podman') return { host: 'host.containers.internal', extraHosts: [] };
  return { host: 'host.docker.internal', extraHosts: [{ host: 'host.docker.internal', ipAddress: 'host-gateway' }] };
}

/** A unique, engine-safe name. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Registers a beforeAll that starts a network (removed at cleanup). */
export function useNetwork(resources: Resources): () => StartedNetwork {
  let network: StartedNetwork | undefined;
  beforeAll(async () => {
    network = resources.network(await new Network().start());
  });
  return () => {
    if (!network) throw new Error('network not started');
    return network;
  };
}
