/**
 * Helpers for the container tests (test/container): the image built from our Dockerfile, a
 * reachable (or not) container engine, an SFTP remote served by our own image on a user-defined
 * network, the sync container itself, and small tools to wait, read logs and compare trees.
 *
 * The image is built once per test run by test/container/global-setup.ts and handed to the test
 * files with vitest's provide/inject. Each test file starts its own network and containers and
 * removes them in afterAll (see `Resources`).
 *
 * Engine quirks handled here (podman 4 with a Docker-compatible API, as on our CI machines):
 * - its CNI networks have no DNS without the dnsname plugin, so a network alias does not resolve.
 *   The setup probes it once; without DNS the remote gets a fixed address on the network (kept
 *   across a stop/start, unlike a dynamic one) and the clients map the alias to it in /etc/hosts,
 *   so they still reach it by the alias name.
 * - without systemd nothing runs a container's HEALTHCHECK on its interval; podman's own API runs
 *   it on demand (`runHealthcheck`).
 * - `docker run --rm` reports exit code 0 whatever happened: exit codes here come from the
 *   engine's wait/inspect of a container that is not removed.
 */
import type Dockerode from 'dockerode';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GenericContainer,
  Network,
  Wait,
  getContainerRuntimeClient,
  type ContainerRuntimeClient,
  type StartedNetwork,
  type StartedTestContainer,
} from 'testcontainers';
import { afterAll, beforeAll, describe, inject, it } from 'vitest';
import { TRASH_FOLDER } from '../../src/sync/trash.ts';

/** An /etc/hosts entry for a container (testcontainers' ExtraHost, which it does not export). */
export interface ExtraHost {
  readonly host: string;
  readonly ipAddress: string;
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where test images are tagged; every run builds its own tag (see `prepareContainerSuite`). */
export const IMAGE_REPO = 'localhost/rclonesync-test';
/** Set (to 1) where the container tests must run: an unreachable engine fails them instead of skipping. */
export const REQUIRE_ENV = 'RCLONESYNC_REQUIRE_CONTAINERS';

export type EngineKind = 'podman' | 'docker';

/** What the global setup found; serializable (it crosses from the setup to the test workers). */
export interface ContainerSuite {
  readonly status: 'ready' | 'no-engine' | 'build-failed';
  /** Why the suite cannot run (status other than ready). */
  readonly reason?: string;
  /** The image built from our Dockerfile for this test run. */
  readonly image?: string;
  readonly engine?: EngineKind;
  /** A network alias resolves by DNS on this engine's user-defined networks. */
  readonly aliasDns?: boolean;
  readonly buildMs?: number;
}

declare module 'vitest' {
  export interface ProvidedContext {
    rclonesyncContainers: ContainerSuite;
  }
}

export function containersRequired(): boolean {
  return /^(1|true|yes)$/i.test(process.env[REQUIRE_ENV] ?? '');
}

// ---------------------------------------------------------------------------------------------
// Engine and image
// ---------------------------------------------------------------------------------------------

function describeError(error: unknown): string {
  const e = error as Error & { code?: string; json?: { message?: string } };
  return e?.json?.message ?? e?.message ?? String(error);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000}s`)), ms);
    }),
  ]);
}

export type EngineProbe = { ok: true; client: ContainerRuntimeClient; kind: EngineKind } | { ok: false; reason: string };

/** Is a Docker-compatible engine reachable (DOCKER_HOST, or testcontainers' usual places)? */
export async function detectEngine(timeoutMs = 20_000): Promise<EngineProbe> {
  const where = process.env.DOCKER_HOST ? `DOCKER_HOST=${process.env.DOCKER_HOST}` : 'DOCKER_HOST is not set';
  try {
    const client = await withTimeout(getContainerRuntimeClient(), timeoutMs, 'container engine');
    const version = (await withTimeout(client.container.dockerode.version(), timeoutMs, 'container engine version')) as { Components?: { Name?: string }[] };
    const kind: EngineKind = version.Components?.some((c) => /podman/i.test(c.Name ?? '')) ? 'podman' : 'docker';
    return { ok: true, client, kind };
  } catch (error) {
    return { ok: false, reason: `no container engine is reachable (${where}): ${describeError(error)}` };
  }
}

/** Build arguments for the Dockerfile: the base images from the environment when set (local stand-ins, mirrors). */
export function buildArgs(): Record<string, string> {
  const args: Record<string, string> = {};
  for (const name of ['NODE_IMAGE', 'RCLONE_IMAGE']) {
    const value = process.env[name]?.trim();
    if (value) args[name] = value;
  }
  return args;
}

/**
 * Builds the image from the Dockerfile under a tag of its own for this run. The engine's layer
 * cache makes a rebuild of unchanged sources take seconds. A tag of its own, because testcontainers
 * ignores the build's error output and only checks that the tag exists afterwards: an old image
 * under a fixed tag would hide a broken build.
 */
export async function buildImage(client?: ContainerRuntimeClient): Promise<{ image: string; ms: number }> {
  const image = `${IMAGE_REPO}:run-${process.pid}-${Date.now().toString(36)}`;
  const started = Date.now();
  try {
    await GenericContainer.fromDockerfile(REPO_ROOT).withBuildArgs(buildArgs()).build(image, { deleteOnExit: false });
  } catch (error) {
    const missing = client ? await missingBaseImages(client) : [];
    throw new Error(buildFailureMessage(describeError(error), missing, buildArgs()));
  }
  return { image, ms: Date.now() - started };
}

/** The Dockerfile's base images (its ARG defaults, or the build args that replace them). */
export async function baseImages(args: Record<string, string> = buildArgs()): Promise<string[]> {
  const dockerfile = await readFile(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const images: string[] = [];
  for (const match of dockerfile.matchAll(/^ARG\s+(NODE_IMAGE|RCLONE_IMAGE)=(\S+)/gm)) images.push(args[match[1]!] ?? match[2]!);
  return images;
}

/** Base images the engine does not have: a build then needs a registry, often the real cause. */
async function missingBaseImages(client: ContainerRuntimeClient): Promise<string[]> {
  const missing: string[] = [];
  for (const name of await baseImages()) {
    const present = await client.container.dockerode
      .getImage(name)
      .inspect()
      .then(() => true, () => false);
    if (!present) missing.push(name);
  }
  return missing;
}

/** Why the build failed, and the one thing to do about it: a missing base image is named as such. */
export function buildFailureMessage(problem: string, missingBaseImages: readonly string[], args: Record<string, string>): string {
  if (missingBaseImages.length > 0) {
    return (
      `the image cannot be built: the base image${missingBaseImages.length === 1 ? '' : 's'} ${missingBaseImages.join(', ')} ` +
      `${missingBaseImages.length === 1 ? 'is' : 'are'} not in the container engine and could not be pulled (${problem}). ` +
      'Pull or load them, or set NODE_IMAGE / RCLONE_IMAGE to images the engine has (scripts/setup-env.sh --containers provides local stand-ins).'
    );
  }
  return (
    `building the image from ${join(REPO_ROOT, 'Dockerfile')} failed (${problem}); build args ${JSON.stringify(args)}. ` +
    'Run `docker build --build-arg NODE_IMAGE=$NODE_IMAGE --build-arg RCLONE_IMAGE=$RCLONE_IMAGE .` or set DEBUG=testcontainers:build to see why.'
  );
}

/** Removes a tag (the layers stay in the engine's cache for the next build). */
export async function removeImageTag(client: ContainerRuntimeClient, image: string): Promise<void> {
  await client.container.dockerode
    .getImage(image)
    .remove({ noprune: true })
    .catch(() => undefined);
}

/** Does a network alias resolve from another container on a user-defined network? */
export async function probeAliasDns(image: string): Promise<boolean> {
  const network = await new Network().start();
  const started: StartedTestContainer[] = [];
  try {
    const sleeper = () => new GenericContainer(image).withEntrypoint(['sleep', '60']).withNetwork(network).withWaitStrategy(Wait.forListeningPorts());
    started.push(await sleeper().withNetworkAliases('rclonesync-dns-probe').start());
    const client = await sleeper().start();
    started.push(client);
    const result = await client.exec(['getent', 'hosts', 'rclonesync-dns-probe']);
    return result.exitCode === 0;
  } finally {
    await Promise.all(started.map((c) => c.stop({ timeout: 0 }).catch(() => undefined)));
    await network.stop().catch(() => undefined);
  }
}

/** For the global setup: engine, image and engine facts, never throwing (a failure is reported to the tests). */
export async function prepareContainerSuite(): Promise<{ suite: ContainerSuite; teardown: () => Promise<void> }> {
  const probe = await detectEngine();
  if (!probe.ok) return { suite: { status: 'no-engine', reason: probe.reason }, teardown: async () => {} };
  let built: { image: string; ms: number };
  try {
    built = await buildImage(probe.client);
  } catch (error) {
    return { suite: { status: 'build-failed', reason: describeError(error), engine: probe.kind }, teardown: async () => {} };
  }
  let aliasDns = false;
  try {
    aliasDns = await probeAliasDns(built.image);
  } catch {
    aliasDns = false;
  }
  return {
    suite: { status: 'ready', image: built.image, engine: probe.kind, aliasDns, buildMs: built.ms },
    teardown: () => removeImageTag(probe.client, built.image),
  };
}

let localSuite: Promise<{ suite: ContainerSuite; teardown: () => Promise<void> }> | undefined;

/**
 * The suite's facts: from the global setup, or (when the tests run under a config without it)
 * prepared by this worker, whose image tag is removed when the worker's file ends.
 */
export async function containerSuite(): Promise<ContainerSuite> {
  let provided: ContainerSuite | undefined;
  try {
    provided = inject('rclonesyncContainers');
  } catch {
    provided = undefined;
  }
  if (provided) return provided;
  localSuite ??= prepareContainerSuite();
  const { suite, teardown } = await localSuite;
  afterAll(teardown);
  return suite;
}

/**
 * `describe` for tests that need the engine and the image: skipped with the reason in the title
 * when no engine is reachable, unless RCLONESYNC_REQUIRE_CONTAINERS=1, where the missing engine
 * is a failing test. A broken image build always fails.
 */
export function describeWithContainers(suite: ContainerSuite, title: string, body: (ready: ReadySuite) => void): void {
  if (suite.status === 'ready') {
    describe(title, () => body(suite as ReadySuite));
    return;
  }
  if (suite.status === 'no-engine' && !containersRequired()) {
    const message = `container tests skipped: ${suite.reason}. Start an engine (scripts/setup-env.sh --containers) or set ${REQUIRE_ENV}=1 to make this a failure.`;
    console.warn(message);
    describe.skip(`${title} [skipped: ${suite.reason}]`, () => {
      it('needs a container engine', () => {});
    });
    return;
  }
  describe(title, () => {
    const why =
      suite.status === 'no-engine'
        ? `${REQUIRE_ENV}=1 but ${suite.reason}`
        : `the image could not be built: ${suite.reason}`;
    it(suite.status === 'no-engine' ? `needs a reachable container engine (${REQUIRE_ENV}=1)` : 'needs the image built from the Dockerfile', () => {
      throw new Error(why);
    });
  });
}

export interface ReadySuite extends ContainerSuite {
  readonly status: 'ready';
  readonly image: string;
  readonly engine: EngineKind;
  readonly aliasDns: boolean;
}

export async function engineClient(): Promise<ContainerRuntimeClient> {
  return getContainerRuntimeClient();
}

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

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

export interface ExitedContainer {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly logs: LogLine[];
  readonly container: StartedTestContainer;
}

/** Starts a one-shot container, waits for it to end, and returns its exit code and output (it stays until cleanup). */
export async function runToExit(resources: Resources, container: GenericContainer, timeoutMs = 120_000): Promise<ExitedContainer> {
  const started = resources.container(await container.start());
  const client = await engineClient();
  const handle = client.container.dockerode.getContainer(started.getId());
  await withTimeout(handle.wait(), timeoutMs, 'waiting for the container to exit').catch(async (error: unknown) => {
    const { stdout, stderr } = await outputOf(started.getId());
    throw new Error(`${describeError(error)}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`);
  });
  // The engine's record, not wait's answer (and never `docker run --rm`'s).
  const info = await handle.inspect();
  const { stdout, stderr } = await outputOf(started.getId());
  return { exitCode: info.State.ExitCode, stdout, stderr, logs: parseLogLines(stdout), container: started };
}

/** For assertion messages: a finished container's exit code and the end of its output. */
export function exitReport(result: ExitedContainer): string {
  return `exit code ${result.exitCode}\n--- stdout ---\n${result.stdout.split('\n').slice(-40).join('\n')}\n--- stderr ---\n${result.stderr}`;
}

/** A container's stdout and stderr so far (the engine's multiplexed log stream, split). */
export async function outputOf(id: string): Promise<{ stdout: string; stderr: string }> {
  const client = await engineClient();
  const raw = (await client.container.dockerode.getContainer(id).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer | string;
  const buffer = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
  return demux(buffer);
}

function demux(buffer: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let offset = 0;
  // Frames: [stream 1|2, 0, 0, 0, size (uint32 BE)] then size bytes. A TTY log is not framed.
  const framed = buffer.length >= 8 && (buffer[0] === 1 || buffer[0] === 2) && buffer[1] === 0 && buffer[2] === 0 && buffer[3] === 0;
  if (!framed) return { stdout: buffer.toString('utf8'), stderr: '' };
  while (offset + 8 <= buffer.length) {
    const stream = buffer[offset];
    const size = buffer.readUInt32BE(offset + 4);
    const chunk = buffer.subarray(offset + 8, offset + 8 + size);
    (stream === 2 ? err : out).push(chunk);
    offset += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

export interface LogLine {
  readonly level?: number | string;
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export function parseLogLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // not a log line
    }
  }
  return lines;
}

/** A running container's JSON log lines so far. */
export async function logLinesOf(container: StartedTestContainer): Promise<LogLine[]> {
  return parseLogLines((await outputOf(container.getId())).stdout);
}

/** For assertion messages: the last lines of a container's output. */
export async function tailOf(container: StartedTestContainer, lines = 60): Promise<string> {
  const { stdout, stderr } = await outputOf(container.getId()).catch(() => ({ stdout: '(no logs)', stderr: '' }));
  return `${stdout.split('\n').slice(-lines).join('\n')}\n${stderr.split('\n').slice(-lines).join('\n')}`.trim();
}

export async function inspect(container: StartedTestContainer): Promise<Dockerode.ContainerInspectInfo> {
  const client = await engineClient();
  return client.container.dockerode.getContainer(container.getId()).inspect();
}

/**
 * Runs the container's own HEALTHCHECK now and returns its result. Podman (no systemd here to run
 * it on its interval) has an API call for it; on Docker the engine runs it on the interval we gave
 * (`fastHealthcheck`) and we read the newest result.
 */
export async function runHealthcheck(suite: ReadySuite, container: StartedTestContainer): Promise<{ status: string; exitCode: number | undefined; output: string }> {
  const client = await engineClient();
  const handle = client.container.dockerode.getContainer(container.getId());
  // The engine keeps only the last few results: a new one is told by its start time, not the count.
  const newest = async () => (await handle.inspect()).State.Health?.Log?.at(-1)?.Start;
  const before = await newest();
  if (suite.engine === 'podman') {
    const modem = handle.modem as unknown as { dial(options: object, callback: (error: unknown, data: unknown) => void): void };
    await new Promise<unknown>((resolvePromise, reject) =>
      modem.dial(
        { path: `/v4.0.0/libpod/containers/${container.getId()}/healthcheck?`, method: 'GET', statusCodes: { 200: true, 409: true, 500: true }, options: {} },
        (error, data) => (error ? reject(error) : resolvePromise(data)),
      ),
    );
  }
  const health = await waitFor(
    'a new healthcheck result',
    async () => {
      const h = (await handle.inspect()).State.Health;
      const start = h?.Log?.at(-1)?.Start;
      return start !== undefined && start !== before ? h : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250 },
  );
  const last = health.Log.at(-1);
  return { status: health.Status, exitCode: last?.ExitCode, output: last?.Output ?? '' };
}

/**
 * The image's health check command with test timings: checked every second (where the engine runs
 * checks on their interval; podman here runs them on demand, see runHealthcheck), one failure
 * makes the container unhealthy, and no start period (in which podman ignores failures).
 */
export function withTestHealthcheck(container: GenericContainer): GenericContainer {
  container.withHealthCheck({ test: ['CMD', 'rclonesync', 'health'], interval: 1_000, timeout: 20_000, retries: 1, startPeriod: 1 });
  // withHealthCheck makes testcontainers wait for "healthy"; the tests wait for what they need.
  container.withWaitStrategy(Wait.forListeningPorts());
  return container;
}

/** Sends SIGTERM (as `docker stop -t <grace>` does) and returns how long the container took to end and its exit code. */
export async function dockerStop(container: StartedTestContainer, graceSeconds: number): Promise<{ ms: number; exitCode: number; oomKilled: boolean }> {
  const client = await engineClient();
  const handle = client.container.dockerode.getContainer(container.getId());
  const started = Date.now();
  await handle.stop({ t: graceSeconds });
  const ms = Date.now() - started;
  const info = await handle.inspect();
  return { ms, exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled };
}

/** How a container reaches a port of the machine running the tests. */
export function hostGateway(suite: ReadySuite): { host: string; extraHosts: ExtraHost[] } {
  if (suite.engine === 'podman') return { host: 'host.containers.internal', extraHosts: [] };
  return { host: 'host.docker.internal', extraHosts: [{ host: 'host.docker.internal', ipAddress: 'host-gateway' }] };
}

// ---------------------------------------------------------------------------------------------
// The SFTP remote: `rclone serve sftp` in a container of our own image
// ---------------------------------------------------------------------------------------------

// rclone's fixed key for `rclone obscure` (fs/config/obscure): AES-256-CTR, random IV first, base64url.
const OBSCURE_KEY = Buffer.from('9c935b48730a554d6bfd7c63c886a92bd390198eb8128afbf4de162b8b95f638', 'hex');

/** `rclone obscure`, without needing rclone on the machine running the tests. */
export function obscure(password: string): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-ctr', OBSCURE_KEY, iv);
  return Buffer.concat([iv, cipher.update(password, 'utf8'), cipher.final()]).toString('base64url');
}

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

// ---------------------------------------------------------------------------------------------
// The sync container
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Trees, waiting
// ---------------------------------------------------------------------------------------------

export interface FileInfo {
  readonly size: number;
  readonly sha256: string;
  readonly uid: number;
}

/** Every file under dir (relative paths with "/"), with size, content hash and owner. */
export async function treeOf(dir: string): Promise<Map<string, FileInfo>> {
  const files = new Map<string, FileInfo>();
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      // The side's trash is never synced: two sides in sync may differ there.
      if (entry.isDirectory() && current === dir && entry.name === TRASH_FOLDER) continue;
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) {
        const content = await readFile(path);
        const info = await lstat(path);
        files.set(relative(dir, path).split(sep).join('/'), { size: content.length, sha256: createHash('sha256').update(content).digest('hex'), uid: info.uid });
      }
    }
  };
  await walk(dir);
  return files;
}

/** name -> sha256, sorted by name: what two sides in sync must agree on. */
export async function contentsOf(dir: string): Promise<Record<string, string>> {
  const tree = await treeOf(dir);
  return Object.fromEntries([...tree.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, info]) => [name, info.sha256]));
}

export function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false>,
  options: { timeoutMs?: number; intervalMs?: number; details?: () => Promise<string> } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const details = options.details ? `\n${await options.details().catch((e: unknown) => String(e))}` : '';
      throw new Error(`timed out after ${(options.timeoutMs ?? 60_000) / 1000}s waiting for ${what}${lastError ? ` (last error: ${describeError(lastError)})` : ''}${details}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 500));
  }
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
