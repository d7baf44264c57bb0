import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepareRcloneConfig, writableInPlace } from '../../src/appliance/rclone-config.ts';
import { createLogger } from '../../src/log.ts';

const SECRET_CONFIG = '[gdrive]\ntype = drive\ntoken = {"access_token":"ya29.SECRET","refresh_token":"1//REFRESH"}\n';

let dir: string;
let logText: string;
const logger = () => createLogger({ level: 'debug', format: 'json' }, new Writable({ write: (chunk, _e, cb) => ((logText += String(chunk)), cb()) }));
const readOnly = { isWritable: async () => false };
const messages = () => logText.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rclonesync-rcconf-'));
  logText = '';
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('prepareRcloneConfig', () => {
  it('does nothing without RCLONE_CONFIG or when it points at a missing file', async () => {
    const env: NodeJS.ProcessEnv = {};
    expect(await prepareRcloneConfig(env, join(dir, 'state'), logger())).toEqual({ action: 'unset' });
    expect(env).toEqual({});
    const missing = { RCLONE_CONFIG: join(dir, 'nope.conf') };
    expect(await prepareRcloneConfig(missing, join(dir, 'state'), logger(), readOnly)).toEqual({ action: 'missing' });
    expect(missing.RCLONE_CONFIG).toBe(join(dir, 'nope.conf'));
    await expect(stat(join(dir, 'state'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('uses a writable config in place', async () => {
    const source = join(dir, 'rclone.conf');
    await writeFile(source, SECRET_CONFIG);
    const env = { RCLONE_CONFIG: source };
    expect(await prepareRcloneConfig(env, join(dir, 'state'), logger())).toEqual({ action: 'writable', path: source });
    expect(env.RCLONE_CONFIG).toBe(source);
  });

  it('copies a read-only config into the state dir once, keeps refreshed tokens, recopies when the source changes', async () => {
    const source = join(dir, 'secret', 'rclone.conf');
    const state = join(dir, 'state');
    await mkdir(join(dir, 'secret'));
    await writeFile(source, SECRET_CONFIG);
    const copy = join(state, 'rclone.conf');

    // First start: copied, private, and rclone is pointed at the copy.
    const env1: NodeJS.ProcessEnv = { RCLONE_CONFIG: source };
    expect(await prepareRcloneConfig(env1, state, logger(), readOnly)).toEqual({ action: 'copied', path: copy });
    expect(env1.RCLONE_CONFIG).toBe(copy);
    expect(await readFile(copy, 'utf8')).toBe(SECRET_CONFIG);
    expect((await stat(copy)).mode & 0o777).toBe(0o600);
    expect(messages()).toContain('RCLONE_CONFIG is read-only: copied it to the state directory, where rclone can refresh its tokens');

    // rclone refreshes the token in the copy; a restart with the same source keeps it.
    const refreshed = SECRET_CONFIG.replace('ya29.SECRET', 'ya29.NEWER');
    await writeFile(copy, refreshed);
    await chmod(copy, 0o644);
    const env2: NodeJS.ProcessEnv = { RCLONE_CONFIG: source };
    expect(await prepareRcloneConfig(env2, state, logger(), readOnly)).toEqual({ action: 'kept', path: copy });
    expect(await readFile(copy, 'utf8')).toBe(refreshed);
    expect((await stat(copy)).mode & 0o777).toBe(0o600);
    expect(env2.RCLONE_CONFIG).toBe(copy);

    // The source changes (a new Secret version): copied again.
    const changed = `${SECRET_CONFIG}[other]\ntype = local\n`;
    await writeFile(source, changed);
    expect(await prepareRcloneConfig({ RCLONE_CONFIG: source }, state, logger(), readOnly)).toEqual({ action: 'recopied', path: copy });
    expect(await readFile(copy, 'utf8')).toBe(changed);

    // The contents never reach the log.
    expect(logText).not.toContain('SECRET');
    expect(logText).not.toContain('REFRESH');
    expect(logText).not.toContain('NEWER');
  });

  it('moves a config it did not make aside instead of overwriting it', async () => {
    const source = join(dir, 'ro.conf');
    const state = join(dir, 'state');
    await mkdir(state);
    await writeFile(source, SECRET_CONFIG);
    await writeFile(join(state, 'rclone.conf'), '[handmade]\ntype = local\n');
    expect(await prepareRcloneConfig({ RCLONE_CONFIG: source }, state, logger(), readOnly)).toMatchObject({ action: 'copied' });
    const files = await readdir(state);
    const backup = files.find((f) => f.startsWith('rclone.conf.bak-'));
    expect(backup).toBeDefined();
    expect(await readFile(join(state, backup!), 'utf8')).toBe('[handmade]\ntype = local\n');
    expect(await readFile(join(state, 'rclone.conf'), 'utf8')).toBe(SECRET_CONFIG);
  });

  it('copies beside a read-only file mounted at the copy place itself', async () => {
    const state = join(dir, 'state');
    await mkdir(state);
    const source = join(state, 'rclone.conf');
    await writeFile(source, SECRET_CONFIG);
    const env: NodeJS.ProcessEnv = { RCLONE_CONFIG: source };
    expect(await prepareRcloneConfig(env, state, logger(), readOnly)).toEqual({ action: 'copied', path: join(state, 'rclone.writable.conf') });
    expect(await readFile(source, 'utf8')).toBe(SECRET_CONFIG);
    expect(env.RCLONE_CONFIG).toBe(join(state, 'rclone.writable.conf'));
  });

  it('writableInPlace needs the file and its directory writable', async () => {
    const file = join(dir, 'rclone.conf');
    await writeFile(file, 'x');
    expect(await writableInPlace(file)).toBe(true);
    if (process.getuid?.() === 0) return; // root writes anything: the mode bits below prove nothing
    await chmod(file, 0o444);
    expect(await writableInPlace(file)).toBe(false);
    await chmod(file, 0o644);
    await chmod(dir, 0o555);
    try {
      expect(await writableInPlace(file)).toBe(false);
    } finally {
      await chmod(dir, 0o755);
    }
  });
});
