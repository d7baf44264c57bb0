/**
 * What the container tests need before they start: a reachable engine, the image built from our
 * Dockerfile and facts about the engine. test/container/global-setup.ts finds them once per test
 * run and hands them to the test files with vitest's provide/inject; each test file then starts
 * its own network and containers (see resources.ts). `describeWithContainers` skips a file's
 * tests, or fails them where they must run, when something is missing.
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
import { GenericContainer, Network, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, describe, inject, it } from 'vitest';
import { describeError } from '../processes.ts';
import { detectEngine, type EngineKind } from './engine.ts';
import { buildImage, removeImageTag } from './image.ts';

/** Set (to 1) where the container tests must run: an unreachable engine fails them instead of skipping. */
export const REQUIRE_ENV = 'RCLONESYNC_REQUIRE_CONTAINERS';

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
