/**
 * The container engine the container tests (test/container) talk to: Docker, or podman with its
 * Docker-compatible API, found where testcontainers looks (DOCKER_HOST or its usual places).
 */
import { getContainerRuntimeClient, type ContainerRuntimeClient } from 'testcontainers';
import { describeError } from '../processes.ts';

export type EngineKind = 'podman' | 'docker';

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
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

export async function engineClient(): Promise<ContainerRuntimeClient> {
  return getContainerRuntimeClient();
}
