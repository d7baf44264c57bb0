/**
 * What ships beside the code: the Kubernetes kustomization applies no Secret (it would replace the
 * user's real rclone.conf), its ConfigMap's SYNC_PATH2 is an obvious placeholder that a run refuses,
 * .gitignore keeps secrets and synced data out of git, and scripts/compose-up stops with the reason
 * when no engine can be reached.
 */
import { execa } from 'execa';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { parseRclonePath } from '../../src/rclone/paths.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const KUSTOMIZE_DIR = join(ROOT, 'deploy', 'kubernetes');

interface Manifest {
  kind?: string;
  metadata?: { name?: string };
  data?: Record<string, string>;
}

/** The objects `kubectl apply -k` would create, read from the kustomization's resources. */
async function renderedByHand(): Promise<Manifest[]> {
  const kustomization = parseAllDocuments(await readFile(join(KUSTOMIZE_DIR, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[] };
  const objects: Manifest[] = [];
  for (const resource of kustomization.resources) {
    for (const document of parseAllDocuments(await readFile(join(KUSTOMIZE_DIR, resource), 'utf8'))) {
      const object = document.toJS() as Manifest | null;
      if (object) objects.push(object);
    }
  }
  return objects;
}

/** `kubectl kustomize` when kubectl is installed (Debian: kubernetes-client), else undefined. */
async function renderedByKubectl(): Promise<Manifest[] | undefined> {
  const result = await execa('kubectl', ['kustomize', KUSTOMIZE_DIR], { reject: false, timeout: 60_000 });
  if ((result as { code?: string }).code === 'ENOENT' || result.exitCode !== 0) return undefined;
  return parseAllDocuments(String(result.stdout)).map((d) => d.toJS() as Manifest);
}

describe('deploy/kubernetes', () => {
  it('the kustomization renders no Secret, so `kubectl apply -k` never replaces the user\'s rclone.conf', async () => {
    for (const objects of [await renderedByHand(), await renderedByKubectl()]) {
      if (!objects) continue;
      expect(objects.map((o) => o.kind)).not.toContain('Secret');
      expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['ConfigMap', 'PersistentVolumeClaim', 'CronJob']));
    }
  });

  it("the ConfigMap's SYNC_PATH2 is a placeholder naming a remote nobody has, which a run refuses", async () => {
    const configMap = (await renderedByHand()).find((o) => o.kind === 'ConfigMap')!;
    const path2 = configMap.data!.SYNC_PATH2!;
    expect(path2).toMatch(/CHANGE-ME/);
    expect(parseRclonePath(path2)).toMatchObject({ kind: 'remote', name: 'CHANGE-ME-remote' });
    // The rest of the ConfigMap is a valid configuration.
    expect(() => loadConfig(configMap.data!)).not.toThrow();
  });
});

describe('.gitignore', () => {
  it('keeps .env and the compose file\'s data/ and state/ (rclone.conf with tokens) out of git, but not src/state/', async () => {
    const files = ['.env', 'data/photo.jpg', 'state/rclone.conf', 'src/state/pair.ts'];
    const result = await execa('git', ['check-ignore', '--no-index', ...files], { cwd: ROOT, reject: false });
    expect(String(result.stdout).split('\n').sort()).toEqual(['.env', 'data/photo.jpg', 'state/rclone.conf']);
  });
});

describe('scripts/compose-up', () => {
  it('without a reachable engine, stops with the reason (exit 1) instead of running compose', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rs-compose-up-'));
    try {
      // A docker that reaches no engine, and an engine setup that starts nothing.
      const log = join(dir, 'docker-calls');
      await writeFile(join(dir, 'docker'), `#!/bin/sh\necho "$*" >> ${log}\necho "Cannot connect to the Docker daemon" >&2\nexit 1\n`);
      await writeFile(join(dir, 'setup.sh'), '#!/bin/sh\nexit 0\n');
      await chmod(join(dir, 'docker'), 0o755);
      await chmod(join(dir, 'setup.sh'), 0o755);
      const result = await execa('bash', [join(ROOT, 'scripts', 'compose-up'), '-d'], {
        env: { PATH: `${dir}:${process.env.PATH}`, CONTAINER_ENGINE_SETUP: join(dir, 'setup.sh'), HOME: dir },
        extendEnv: false,
        reject: false,
        timeout: 120_000,
      });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(/compose-up: no container engine is reachable \(docker info: Cannot connect to the Docker daemon\)/);
      expect(result.stderr).not.toMatch(/Traceback/);
      const calls = await readFile(log, 'utf8');
      expect(calls).not.toMatch(/compose|up/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
