/**
 * An S3 remote: MinIO through @testcontainers/minio, defined for the sync container only by
 * RCLONE_CONFIG_<NAME>_* variables. It needs that module and the MinIO image present locally
 * (nothing is pulled); where either is missing the test is skipped and says which.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { StartedNetwork, StartedTestContainer } from 'testcontainers';
import { ImageName, Network } from 'testcontainers';
import { engineClient } from '../helpers/containers/engine.ts';
import { runToExit } from '../helpers/containers/output.ts';
import { AppContainer, chownTree, hostDir, useResources } from '../helpers/containers/resources.ts';
import { containerSuite, describeWithContainers, type ReadySuite } from '../helpers/containers/suite.ts';
import { digestTree } from '../helpers/trees.ts';

const suite = await containerSuite();
const MODULE = '@testcontainers/minio';
/** The image @testcontainers/minio uses unless told otherwise; MINIO_IMAGE picks another (a mirror). */
const MINIO_IMAGE = process.env.MINIO_IMAGE?.trim() || 'minio/minio:RELEASE.2024-08-03T04-33-23Z';

interface MinioModule {
  MinioContainer: new (image: string) => {
    withUsername(user: string): unknown;
    withPassword(password: string): unknown;
    withNetwork(network: StartedNetwork): unknown;
    withNetworkAliases(...aliases: string[]): unknown;
    start(): Promise<StartedTestContainer>;
  };
}

/** Why the MinIO test cannot run here, or undefined when it can. Nothing is pulled or installed. */
async function minioUnavailable(ready: ReadySuite | undefined): Promise<string | undefined> {
  const reasons: string[] = [];
  if (ready) {
    const client = await engineClient();
    const present = await client.image.exists(ImageName.fromString(MINIO_IMAGE)).catch(() => false);
    if (!present) reasons.push(`the MinIO image ${MINIO_IMAGE} is not present locally and cannot be pulled here (pull it, or set MINIO_IMAGE to a local one)`);
  }
  try {
    createRequire(import.meta.url).resolve(MODULE);
  } catch {
    reasons.push(`${MODULE} is not installed (not a dev dependency of this project)`);
  }
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}

const unavailable = await minioUnavailable(suite.status === 'ready' ? (suite as ReadySuite) : undefined);
if (unavailable && suite.status === 'ready') console.warn(`MinIO test skipped: ${unavailable}`);

describeWithContainers(suite, 'an S3 remote (MinIO) defined by environment variables', (ready) => {
  const resources = useResources();

  it.skipIf(unavailable)(`syncs /data with a bucket both ways${unavailable ? ` [skipped: ${unavailable}]` : ''}`, async () => {
    const { MinioContainer } = (await import(/* @vite-ignore */ MODULE)) as MinioModule;
    const network = resources.network(await new Network().start());
    const minio = new MinioContainer(MINIO_IMAGE);
    minio.withUsername('rclonesync');
    minio.withPassword('rclonesync-secret');
    minio.withNetwork(network);
    minio.withNetworkAliases('minio');
    const started = resources.container(await minio.start());
    // Where aliases do not resolve (podman without DNS), its address on the network; it is not restarted.
    const host = ready.aliasDns ? 'minio' : started.getIpAddress(network.getName());
    const s3 = {
      RCLONE_CONFIG_S3_TYPE: 's3',
      RCLONE_CONFIG_S3_PROVIDER: 'Minio',
      RCLONE_CONFIG_S3_ENDPOINT: `http://${host}:9000`,
      RCLONE_CONFIG_S3_ACCESS_KEY_ID: 'rclonesync',
      RCLONE_CONFIG_S3_SECRET_ACCESS_KEY: 'rclonesync-secret',
    };
    const rclone = (args: string[], binds: { source: string; target: string; mode?: 'ro' | 'rw' }[] = []) =>
      runToExit(resources, new AppContainer(ready.image).withEntrypoint(['rclone']).withCommand(args).withNetwork(network).withEnvironment(s3).withBindMounts(binds));
    expect((await rclone(['mkdir', 's3:bucket'])).exitCode).toBe(0);
    const seed = await hostDir(resources, 'seed');
    await mkdir(join(seed, 'dir'));
    await writeFile(join(seed, 'dir', 'from-bucket.txt'), 'in the bucket\n');
    await chownTree(seed);
    expect((await rclone(['copy', '/seed', 's3:bucket/photos'], [{ source: seed, target: '/seed', mode: 'ro' }])).exitCode).toBe(0);

    const data = await hostDir(resources, 'data');
    const state = await hostDir(resources, 'state');
    await writeFile(join(data, 'from-data.txt'), 'in /data\n');
    await chownTree(data);
    const result = await runToExit(
      resources,
      new AppContainer(ready.image)
        .withCommand(['run'])
        .withNetwork(network)
        .withEnvironment({ ...s3, SYNC_PATH2: 's3:bucket/photos', LOG_FORMAT: 'json' })
        .withBindMounts([
          { source: data, target: '/data' },
          { source: state, target: '/state' },
        ]),
    );
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(Object.keys(await digestTree(data))).toEqual(['dir/from-bucket.txt', 'from-data.txt']);
    expect(await readFile(join(data, 'dir', 'from-bucket.txt'), 'utf8')).toBe('in the bucket\n');
    const listing = await rclone(['lsf', '-R', '--files-only', 's3:bucket/photos']);
    expect(listing.stdout.split('\n').filter(Boolean).sort()).toEqual(['dir/from-bucket.txt', 'from-data.txt']);
  });
});
