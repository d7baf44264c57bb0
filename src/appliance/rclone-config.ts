/**
 * rclone must be able to write its config: OAuth backends (Google Drive, OneDrive, Dropbox, ...)
 * store refreshed tokens in it. A config handed over read-only (a Kubernetes Secret, a `:ro`
 * mount) is therefore copied into the state directory once, and rclone is pointed at the copy.
 * The copy is made again only when the source's content changes, so the tokens rclone refreshed
 * in the copy survive restarts. The file's contents are never logged.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../log.ts';

export type RcloneConfigAction = 'none' | 'unset' | 'memory-only' | 'missing' | 'writable' | 'copied' | 'recopied' | 'kept';

/**
 * rclone keeps its configuration in memory only when --config (RCLONE_CONFIG) is empty, the null
 * device, or a file named "notfound" (rclone docs, --config): the usual choice when every remote
 * is defined by RCLONE_CONFIG_<NAME>_* variables.
 */
export function isMemoryOnlyConfig(value: string): boolean {
  const trimmed = value.trim();
  return trimmed === '' || trimmed === '/dev/null' || basename(trimmed) === 'notfound';
}

export interface RcloneConfigResult {
  readonly action: RcloneConfigAction;
  /** The config rclone will use (RCLONE_CONFIG afterwards), when there is one. */
  readonly path?: string;
}

/**
 * Prepares RCLONE_CONFIG for rclone: when it names a file we cannot write in place, copies it to
 * `<stateDir>/rclone.conf` and sets env.RCLONE_CONFIG (process.env in the CLI, which rclone
 * children inherit) to the copy.
 */
export async function prepareRcloneConfig(
  env: NodeJS.ProcessEnv,
  stateDir: string,
  logger: Logger,
  options: { readonly isWritable?: (file: string) => Promise<boolean> } = {},
): Promise<RcloneConfigResult> {
  const configured = env.RCLONE_CONFIG?.trim();
  if (!configured) return { action: 'unset' };
  if (isMemoryOnlyConfig(configured)) return { action: 'memory-only' };
  const source = resolve(configured);
  try {
    const info = await stat(source);
    if (!info.isFile()) throw new ConfigError(`RCLONE_CONFIG (${configured}) is not a file`);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      // Normal when remotes are defined wholly through RCLONE_CONFIG_<NAME>_* variables.
      logger.debug({ rcloneConfig: configured }, 'RCLONE_CONFIG does not exist (yet): remotes come from RCLONE_CONFIG_* variables, or rclone creates it');
      return { action: 'missing' };
    }
    throw new ConfigError(`RCLONE_CONFIG (${configured}): cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }

  if (await (options.isWritable ?? writableInPlace)(source)) return { action: 'writable', path: source };

  let copy = join(resolve(stateDir), 'rclone.conf');
  if ((await realpath(source).catch(() => source)) === (await realpath(copy).catch(() => copy))) {
    // The read-only file is mounted at the copy's own place: copy beside it.
    copy = join(resolve(stateDir), 'rclone.writable.conf');
  }
  const hashFile = `${copy}.source-sha256`;

  let content: Buffer;
  try {
    content = await readFile(source);
  } catch (error) {
    throw new ConfigError(`RCLONE_CONFIG (${configured}): cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const sourceHash = createHash('sha256').update(content).digest('hex');
  const [copyExists, recordedHash] = await Promise.all([
    stat(copy).then((s) => s.isFile(), () => false),
    readFile(hashFile, 'utf8').then((t) => t.trim(), () => undefined),
  ]);

  let action: RcloneConfigAction;
  if (copyExists && recordedHash === sourceHash) {
    action = 'kept';
    logger.info({ source: configured, copy }, 'RCLONE_CONFIG is read-only: using the writable copy made earlier (the source has not changed; tokens refreshed in the copy are kept)');
  } else {
    await mkdir(dirname(copy), { recursive: true, mode: 0o700 });
    if (copyExists && recordedHash === undefined) {
      // Not a copy we made (say, a config put in the state directory by hand): keep it aside.
      const backup = `${copy}.bak-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      await rename(copy, backup);
      logger.warn({ copy, backup }, 'a config we did not make was in the way of the writable copy: moved it aside');
    }
    await writePrivate(copy, content);
    await writePrivate(hashFile, `${sourceHash}\n`);
    action = copyExists && recordedHash !== undefined ? 'recopied' : 'copied';
    logger.info(
      { source: configured, copy },
      action === 'copied'
        ? 'RCLONE_CONFIG is read-only: copied it to the state directory, where rclone can refresh its tokens'
        : 'RCLONE_CONFIG is read-only and its content changed: copied it again (tokens refreshed in the old copy are replaced)',
    );
  }
  await chmod(copy, 0o600);
  env.RCLONE_CONFIG = copy;
  return { action, path: copy };
}

/**
 * rclone saves its config by writing a temporary file beside it and renaming it over: both the
 * file and its (real) directory must be writable.
 */
export async function writableInPlace(file: string): Promise<boolean> {
  try {
    const real = await realpath(file);
    await access(real, constants.W_OK);
    await access(dirname(real), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

async function writePrivate(path: string, content: Buffer | string): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(temporary, content, { mode: 0o600 });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
