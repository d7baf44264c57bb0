/**
 * Containers as processes: run one to its end and read its exit code and output (the engine's
 * record, never `docker run --rm`'s), read a running one's log lines, run its health check now,
 * stop it as `docker stop` does.
 */
import type Dockerode from 'dockerode';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { parseLogLines, type LogLine } from '../logs.ts';
import { describeError, waitFor } from '../processes.ts';
import { engineClient, withTimeout } from './engine.ts';
import type { Resources } from './resources.ts';
import type { ReadySuite } from './suite.ts';

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
