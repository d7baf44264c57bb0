/**
 * The shipped docker-compose.yml: `config` validates it (and names SYNC_PATH2 when it is missing),
 * and `up -d --build` starts it as shipped, with only what a test needs changed by an override
 * file: temp folders for data and state, a second host folder as the remote (SYNC_PATH2=/remote),
 * and a container name and image tag of its own so that it cannot clash with anything else.
 */
import { spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { engineClient } from '../helpers/containers/engine.ts';
import { IMAGE_REPO, removeImageTag } from '../helpers/containers/image.ts';
import { chownTree, hostDir, useResources } from '../helpers/containers/resources.ts';
import { containersRequired, containerSuite, describeWithContainers, REQUIRE_ENV } from '../helpers/containers/suite.ts';
import { freePort, REPO_ROOT, waitFor } from '../helpers/processes.ts';
import { digestTree, sha256 } from '../helpers/trees.ts';

const suite = await containerSuite();

interface Result {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

function exec(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ exitCode: 127, stdout, stderr: `${stderr}${String(error)}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code ?? 1, stdout, stderr });
    });
  });
}

/** `docker compose` (v2) or `docker-compose` (v1.29+), whichever works. */
async function findCompose(): Promise<string[] | undefined> {
  for (const candidate of [['docker', 'compose'], ['docker-compose']]) {
    const result = await exec(candidate[0]!, [...candidate.slice(1), 'version'], process.env, 30_000);
    if (result.exitCode === 0) return candidate;
  }
  return undefined;
}

/** The environment compose sees: ours without any setting the compose file reads, plus the given ones. */
function composeEnv(settings: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(SYNC_|RCLONE_CONFIG|LOG_|PUID$|PGID$|TZ$|COMPOSE_)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...settings };
}

const compose = await findCompose();
const composeFile = join(REPO_ROOT, 'docker-compose.yml');

function describeWithCompose(title: string, body: (compose: string[]) => void): void {
  if (compose) {
    describe(title, () => body(compose));
  } else if (containersRequired()) {
    describe(title, () => it('needs docker compose', () => {
      throw new Error(`${REQUIRE_ENV}=1 but neither \`docker compose\` nor \`docker-compose\` works`);
    }));
  } else {
    console.warn('compose tests skipped: neither `docker compose` nor `docker-compose` is installed');
    describe.skip(`${title} [skipped: no docker compose]`, () => it('needs docker compose', () => {}));
  }
}

/**
 * A compose project of its own (name, image tag) for one suite: `up` starts it with the suite's
 * files; the suite's end brings it down (volumes too) and removes its image tag.
 */
function composeProject(prefix: string) {
  const project = `${prefix}${process.pid}${Math.random().toString(36).slice(2, 8)}`;
  const handle = { project, image: `${IMAGE_REPO}:compose-${project}`, args: [] as string[], env: {} as NodeJS.ProcessEnv, up: false };
  afterAll(async () => {
    if (handle.up && compose) await exec(compose[0]!, [...compose.slice(1), ...handle.args, 'down', '-v', '--timeout', '5'], handle.env, 120_000);
    await removeImageTag(await engineClient(), handle.image);
  }, 180_000);
  return handle;
}

/** The override file (the project's image, container name and extra volumes) and an empty env file, in `scratch`. */
async function projectFiles(scratch: string, handle: ReturnType<typeof composeProject>, volumes: readonly string[]) {
  const override = join(scratch, 'override.yml');
  const lines = ['services:', '  rclonesync:', `    image: ${handle.image}`, `    container_name: ${handle.project}-rclonesync`, '    volumes:', ...volumes.map((v) => `      - ${v}`), ''];
  await writeFile(override, lines.join('\n'));
  // An empty env file: a developer's .env beside the compose file must not change the outcome.
  const envFile = join(scratch, 'empty.env');
  await writeFile(envFile, '');
  return { override, envFile };
}

/** `up -d --build`, then the service's container and a function reading its log. */
async function composeUp(composeCommand: string[], handle: ReturnType<typeof composeProject>) {
  handle.up = true;
  const started = await exec(composeCommand[0]!, [...composeCommand.slice(1), ...handle.args, 'up', '-d', '--build'], handle.env, 600_000);
  expect(started.exitCode, `${started.stdout}\n${started.stderr}`).toBe(0);
  const client = await engineClient();
  const container = client.container.dockerode.getContainer(`${handle.project}-rclonesync`);
  const logs = async () => {
    const raw = (await container.logs({ stdout: true, stderr: true, follow: false }).catch((e: unknown) => String(e))) as unknown;
    return Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw);
  };
  return { container, logs };
}

describeWithCompose('docker-compose.yml: config', (composeCommand) => {
  const resources = useResources();
  const run = async (settings: Record<string, string>) => {
    // An empty env file: a developer's .env beside the compose file must not change the outcome.
    const envFile = join(await hostDir(resources, 'envfile'), 'empty.env');
    await writeFile(envFile, '');
    return exec(composeCommand[0]!, [...composeCommand.slice(1), '--env-file', envFile, '-f', composeFile, 'config'], composeEnv(settings), 60_000);
  };

  it('is valid with SYNC_PATH2 set, and carries the settings and the hardening through', async () => {
    const result = await run({ SYNC_PATH2: 'mydrive:Backup/Photos', PUID: '1234', PGID: '5678', SYNC_SCHEDULE: '15 * * * *' });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/SYNC_PATH2: mydrive:Backup\/Photos/);
    expect(result.stdout).toMatch(/SYNC_SCHEDULE: 15 \* \* \* \*|SYNC_SCHEDULE: '15 \* \* \* \*'/);
    expect(result.stdout).toMatch(/user: ['"]?1234:5678['"]?/);
    expect(result.stdout).toMatch(/read_only: true/);
    expect(result.stdout).toMatch(/\/tmp:mode=1777,size=64m/);
    expect(result.stdout).toMatch(/no-new-privileges:true/);
    expect(result.stdout).toMatch(/test:\s*\n\s*- CMD\s*\n\s*- rclonesync\s*\n\s*- health/);
  });

  it('fails without SYNC_PATH2, with a message that says what to set', async () => {
    const result = await run({});
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/set SYNC_PATH2 \(e\.g\. in \.env\) to the rclone path to sync with/);
  });
});

describeWithContainers(suite, 'docker-compose.yml: up', (ready) => {
  const resources = useResources();
  const handle = composeProject('rclonesynctest');
  const { project } = handle;

  it.runIf(compose !== undefined)('starts the shipped compose file (`up -d --build`), syncs a file both ways, and `down -v` removes it', { timeout: 300_000 }, async () => {
    const composeCommand = compose!;
    // The folders' owner is what PUID/PGID name (as the compose file's comments tell users to do).
    const owner = { uid: 4321, gid: 4321 };
    const data = await hostDir(resources, 'compose-data', owner);
    const state = await hostDir(resources, 'compose-state', owner);
    const remoteDir = await hostDir(resources, 'compose-remote', owner);
    const scratch = await hostDir(resources, 'compose-files');
    await writeFile(join(data, 'from-data.txt'), 'from the local folder\n');
    await writeFile(join(remoteDir, 'from-remote.txt'), 'from the remote\n');
    await chownTree(data, owner);
    await chownTree(remoteDir, owner);
    const dataOwner = await stat(data);

    const { override, envFile } = await projectFiles(scratch, handle, [`${remoteDir}:/remote`]);
    const args = (handle.args = ['--env-file', envFile, '-p', project, '-f', composeFile, '-f', override]);
    const env = (handle.env = composeEnv({
      SYNC_PATH2: '/remote',
      SYNC_LOCAL_DIR: data,
      SYNC_STATE_HOST_DIR: state,
      PUID: String(dataOwner.uid),
      PGID: String(dataOwner.gid),
    }));

    const { container, logs } = await composeUp(composeCommand, handle);
    await waitFor(
      'both files on both sides',
      async () => {
        const [a, b] = await Promise.all([digestTree(data), digestTree(remoteDir)]);
        return Object.keys(a).length === 2 && JSON.stringify(a) === JSON.stringify(b);
      },
      { timeoutMs: 90_000, details: logs },
    );
    expect(await readFile(join(remoteDir, 'from-data.txt'), 'utf8')).toBe('from the local folder\n');
    expect(await readFile(join(data, 'from-remote.txt'), 'utf8')).toBe('from the remote\n');
    expect((await stat(join(data, 'from-remote.txt'))).uid).toBe(dataOwner.uid);

    // As the compose file configures it: PUID:PGID, read-only root, tmpfs /tmp, healthy by its own check.
    const info = await container.inspect();
    expect(info.State.Running).toBe(true);
    expect(info.Config.User).toBe(`${dataOwner.uid}:${dataOwner.gid}`);
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(Object.keys(info.HostConfig.Tmpfs ?? {})).toContain('/tmp');
    const health = await exec(composeCommand[0]!, [...composeCommand.slice(1), ...args, 'exec', '-T', 'rclonesync', 'rclonesync', 'health'], env, 60_000);
    expect(health.exitCode, `${health.stdout}\n${health.stderr}`).toBe(0);
    expect(health.stdout).toMatch(/^healthy/);

    const down = await exec(composeCommand[0]!, [...composeCommand.slice(1), ...args, 'down', '-v', '--timeout', '10'], env, 120_000);
    expect(down.exitCode, `${down.stdout}\n${down.stderr}`).toBe(0);
    handle.up = false;
    const gone = await container.inspect().then(
      () => false,
      (error: { statusCode?: number }) => error.statusCode === 404,
    );
    expect(gone, 'the container is removed by down').toBe(true);
  });
});

const pairsComposeFile = join(REPO_ROOT, 'docker-compose.pairs.yml');

describeWithCompose('docker-compose.pairs.yml: config', (composeCommand) => {
  const resources = useResources();

  it('is valid as shipped and defines two named pairs with their own settings', async () => {
    const envFile = join(await hostDir(resources, 'pairs-envfile'), 'empty.env');
    await writeFile(envFile, '');
    const result = await exec(composeCommand[0]!, [...composeCommand.slice(1), '--env-file', envFile, '-f', pairsComposeFile, 'config'], composeEnv({}), 60_000);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/SYNC_PAIR_PHOTOS_PATH2: gdrive:Photos/);
    expect(result.stdout).toMatch(/SYNC_PAIR_DOCS_PATH2: nextcloud:Documents/);
    expect(result.stdout).toMatch(/SYNC_PAIR_DOCS_SCHEDULE: 15 \* \* \* \*|SYNC_PAIR_DOCS_SCHEDULE: '15 \* \* \* \*'/);
    expect(result.stdout).toMatch(/host_ip: 127\.0\.0\.1|127\.0\.0\.1:8080:8080/);
  });
});

describeWithContainers(suite, 'docker-compose.pairs.yml: up', (ready) => {
  const resources = useResources();
  const handle = composeProject('rclonesyncpairs');
  const { project } = handle;

  it.runIf(compose !== undefined)('runs two pairs in one container; a file saved in a watched folder syncs within seconds while the schedule is far away', { timeout: 400_000 }, async () => {
    const composeCommand = compose!;
    const owner = { uid: 4321, gid: 4321 };
    const photos = await hostDir(resources, 'pairs-photos', owner);
    const docs = await hostDir(resources, 'pairs-docs', owner);
    const state = await hostDir(resources, 'pairs-state', owner);
    const remotePhotos = await hostDir(resources, 'pairs-remote-photos', owner);
    const remoteDocs = await hostDir(resources, 'pairs-remote-docs', owner);
    const scratch = await hostDir(resources, 'pairs-files');
    await writeFile(join(photos, 'cat.jpg'), 'a cat\n');
    await writeFile(join(remoteDocs, 'letter.txt'), 'a letter\n');
    for (const dir of [photos, docs, remotePhotos, remoteDocs]) await chownTree(dir, owner);
    const dataOwner = await stat(photos);

    const { override, envFile } = await projectFiles(scratch, handle, [`${remotePhotos}:/remote/photos`, `${remoteDocs}:/remote/docs`]);
    const args = (handle.args = ['--env-file', envFile, '-p', project, '-f', pairsComposeFile, '-f', override]);
    const env = (handle.env = composeEnv({
      PHOTOS_DIR: photos,
      DOCS_DIR: docs,
      SYNC_STATE_HOST_DIR: state,
      PHOTOS_REMOTE: '/remote/photos',
      DOCS_REMOTE: '/remote/docs',
      // Far away: only the start run and the watcher sync here.
      SYNC_SCHEDULE: '0 0 1 1 *',
      DOCS_SCHEDULE: '0 0 1 1 *',
      SYNC_WATCH_DELAY: '2s',
      SYNC_HTTP_HOST_PORT: String(await freePort()),
      PUID: String(dataOwner.uid),
      PGID: String(dataOwner.gid),
    }));

    const { container, logs } = await composeUp(composeCommand, handle);    const health = () => exec(composeCommand[0]!, [...composeCommand.slice(1), ...args, 'exec', '-T', 'rclonesync', 'rclonesync', 'health'], env, 60_000);

    // The start runs of both pairs.
    await waitFor('both pairs synced and healthy', async () => (await health()).exitCode === 0, { timeoutMs: 120_000, details: logs });
    expect(await readFile(join(remotePhotos, 'cat.jpg'), 'utf8')).toBe('a cat\n');
    expect(await readFile(join(docs, 'letter.txt'), 'utf8')).toBe('a letter\n');
    expect((await health()).stdout).toMatch(/^healthy: all 2 pairs/);

    // Watch mode through the bind mount: saved on the host, on the remote within the delay and a run.
    await writeFile(join(photos, 'dog.jpg'), 'a dog\n');
    await waitFor('dog.jpg on the photos remote', async () => (await digestTree(remotePhotos))['dog.jpg'] === sha256('a dog\n'), { timeoutMs: 60_000, details: logs });
    expect(await logs()).toMatch(/starting a run for the local changes/);
    expect(await logs()).not.toMatch(/starting a scheduled run/);

    const down = await exec(composeCommand[0]!, [...composeCommand.slice(1), ...args, 'down', '-v', '--timeout', '10'], env, 120_000);
    expect(down.exitCode, `${down.stdout}\n${down.stderr}`).toBe(0);
    handle.up = false;
  });
});
