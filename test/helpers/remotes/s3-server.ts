/**
 * A real S3 endpoint for integration tests: s3rver (the npm package, an S3 server in Node) in a
 * child process on a loopback port the OS picks, storing its objects in a temp folder, with one
 * bucket created at start.
 *
 * Clients reach it through a remote defined ONLY by environment variables
 * (RCLONE_CONFIG_<NAME>_TYPE=s3, _PROVIDER=Other, _ENDPOINT, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY,
 * _FORCE_PATH_STYLE): `clientEnv()` returns them. rclone 1.60 needs nothing more against s3rver
 * (region defaults to us-east-1, which s3rver accepts; it answers v1 listings, server-side copy with
 * metadata replacement, HEAD with the X-Amz-Meta-Mtime rclone stores, and md5 ETags), with one
 * exception that is not a setting of the remote: the AWS SDK inside rclone reads AWS_* variables
 * of its environment whatever the remote says, and AWS_CA_BUNDLE (set machine-wide on some hosts,
 * ours included) makes every call fail with "LoadCustomCABundleError: unable to load custom CA
 * bundle, HTTPClient's transport unsupported type". So `clientEnv()` also removes every AWS_*
 * variable the test process has (an `undefined` value removes a variable, see cleanEnv).
 *
 * Tests look at and change the remote side through rclone (`rclone(...)`, `readTree`, `list`,
 * `writeTree`, `deleteFiles`), i.e. through the S3 API; `storeDir` shows where s3rver keeps the
 * objects of a prefix on disk, only to notice whether anything was written at all.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cleanEnv, stopChild, type Env } from '../processes.ts';
import { readTree, TRASH_FOLDER, writeTree, type Tree } from '../trees.ts';

export interface S3Object {
  readonly size: number;
  /** As rclone lists it (RFC 3339, nanoseconds): the X-Amz-Meta-Mtime rclone stored, else LastModified. */
  readonly modTime: string;
  readonly md5: string;
}

export interface RcloneResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface S3Server {
  /** s3rver's data folder (its filesystem store). */
  readonly dataDir: string;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly bucket: string;
  /** The remote name the env defines (upper case in the variables, as given in paths). */
  readonly remoteName: string;
  /** `<remoteName>:<bucket>/<prefix>` (`<remoteName>:<bucket>` without a prefix). */
  remote(prefix?: string): string;
  /** RCLONE_CONFIG_<NAME>_* for a client, and every AWS_* variable of this process removed. */
  clientEnv(): Env;
  /** Where s3rver keeps the objects under `prefix` (files `<key>._S3rver_object`, `_metadata.json`, `.md5`). */
  storeDir(prefix?: string): string;
  /** rclone with the client env and no config file. Never rejects; see `exitCode`. */
  rclone(args: readonly string[]): Promise<RcloneResult>;
  /** Every object under `prefix` with its content as UTF-8 text (downloaded by rclone). */
  readTree(prefix: string): Promise<Record<string, string>>;
  /** Every object under `prefix` with size, modtime and md5, as rclone lists them. */
  list(prefix: string): Promise<Record<string, S3Object>>;
  /** Uploads `tree` under `prefix` with rclone (which stores each file's mtime: `mtime`, or now). */
  writeTree(prefix: string, tree: Tree, mtime?: Date): Promise<void>;
  /**
   * Stores one object as another S3 client would: a plain PUT without rclone's mtime metadata, so
   * rclone sees its LastModified (whole seconds on s3rver). A key ending in '/' makes a "folder"
   * marker, as S3 consoles do. Unsigned: s3rver lets anonymous requests through (real S3 would not).
   */
  putObject(prefix: string, path: string, content: string | Buffer): Promise<void>;
  /** Deletes exactly these objects under `prefix`. */
  deleteFiles(prefix: string, paths: readonly string[]): Promise<void>;
  /** The server's log so far, colours stripped (for assertion messages; the last 64 KiB). */
  log(): string;
  /** Whether the server process is still running. */
  running(): boolean;
  /** Stops the server and removes its temp folder (a `dataDir` given in the options stays). Idempotent. */
  stop(): Promise<void>;
}

export interface S3ServerOptions {
  readonly remoteName?: string;
  readonly bucket?: string;
  /** Keep the objects in this folder instead of a temp folder, which `stop` then leaves alone: a
   * server started again on it serves the same objects (on another port). */
  readonly dataDir?: string;
  readonly startTimeoutMs?: number;
}

/** S3rver's own access key and secret: it accepts only these. */
export const S3RVER_KEY = 'S3RVER';

const S3RVER_BIN = join(dirname(createRequire(import.meta.url).resolve('s3rver/package.json')), 'bin', 's3rver.js');
const LOG_LIMIT = 64 * 1024;
const ANSI = /\x1b\[[0-9;]*m/g;

/** The client side of the remote: RCLONE_CONFIG_<NAME>_* only, and no AWS_* of ours. */
export function s3ClientEnv(remoteName: string, endpoint: string): Env {
  const prefix = `RCLONE_CONFIG_${remoteName.toUpperCase()}_`;
  const env: Env = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('AWS_')) env[key] = undefined;
  return {
    ...env,
    [`${prefix}TYPE`]: 's3',
    [`${prefix}PROVIDER`]: 'Other',
    [`${prefix}ENDPOINT`]: endpoint,
    [`${prefix}ACCESS_KEY_ID`]: S3RVER_KEY,
    [`${prefix}SECRET_ACCESS_KEY`]: S3RVER_KEY,
    [`${prefix}FORCE_PATH_STYLE`]: 'true',
  };
}

export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  const remoteName = options.remoteName ?? 'tests3';
  const bucket = options.bucket ?? 'rclonesync';
  const workDir = await mkdtemp(join(tmpdir(), 'rs-s3rver-'));
  const dataDir = options.dataDir ?? join(workDir, 'data');
  const timeout = options.startTimeoutMs ?? 15_000;

  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8').replace(ANSI, '');
    if (output.length > 2 * LOG_LIMIT) output = output.slice(-LOG_LIMIT);
  };
  // Port 0: the server binds a free port itself and prints it, so no other process can take it
  // between our choosing it and the server binding it. -d creates the folder; --configure-bucket
  // creates the bucket before the server listens.
  const child: ResultPromise = execa(process.execPath, [S3RVER_BIN, '-d', dataDir, '-a', '127.0.0.1', '-p', '0', '--configure-bucket', bucket], {
    reject: false,
    stdin: 'ignore',
    buffer: false,
    cleanup: true,
  });
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited = false;
  const ended = child.then(() => {
    exited = true;
  });

  const deadline = Date.now() + timeout;
  let port = 0;
  while (!exited && Date.now() < deadline) {
    const match = /S3rver listening on 127\.0\.0\.1:(\d+)/.exec(output);
    if (match) {
      port = Number(match[1]);
      break;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  if (!port) {
    child.kill('SIGKILL');
    await ended;
    await rm(workDir, { recursive: true, force: true });
    throw new Error(`s3rver did not start${exited ? ' (it exited)' : ` within ${timeout} ms`}: ${output}`);
  }

  const endpoint = `http://127.0.0.1:${port}`;
  const env = s3ClientEnv(remoteName, endpoint);
  const remote = (prefix = '') => (prefix ? `${remoteName}:${bucket}/${prefix}` : `${remoteName}:${bucket}`);
  let scratchCounter = 0;
  const scratch = () => join(workDir, `scratch-${++scratchCounter}`);

  async function rclone(args: readonly string[]): Promise<RcloneResult> {
    const result = await execa('rclone', [...args], {
      env: cleanEnv({ ...env, RCLONE_CONFIG: join(workDir, 'no-rclone.conf') }),
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: 30_000,
    });
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
  }
  async function rcloneOk(args: readonly string[]): Promise<string> {
    const result = await rclone(args);
    if (result.exitCode !== 0) throw new Error(`rclone ${args.join(' ')} failed with exit ${result.exitCode}: ${result.stderr}\n--- s3rver ---\n${output.slice(-4000)}`);
    return result.stdout;
  }

  return {
    dataDir,
    port,
    endpoint,
    bucket,
    remoteName,
    remote,
    clientEnv: () => ({ ...env }),
    storeDir: (prefix = '') => join(dataDir, bucket, ...prefix.split('/').filter((s) => s !== '')),
    rclone,
    async readTree(prefix) {
      const dir = scratch();
      try {
        // --no-unicode-normalization: keep NFC and NFD spellings of a name apart, as the engine does.
        await rcloneOk(['copy', remote(prefix), dir, '--no-unicode-normalization']);
        return await readTree(dir);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async list(prefix) {
      const stdout = await rcloneOk(['lsjson', '-R', '--files-only', '--no-mimetype', '--hash', '--hash-type', 'md5', remote(prefix)]);
      const entries = JSON.parse(stdout) as { Path: string; Size: number; ModTime: string; Hashes?: { md5?: string } }[];
      const result: Record<string, S3Object> = {};
      // The side's trash is never synced: two sides in sync may differ there.
      for (const e of entries) if (!e.Path.startsWith(`${TRASH_FOLDER}/`)) result[e.Path] = { size: e.Size, modTime: e.ModTime, md5: e.Hashes?.md5 ?? '' };
      return result;
    },
    async writeTree(prefix, tree, mtime) {
      const dir = scratch();
      try {
        await writeTree(dir, tree, mtime);
        // --ignore-times: upload even when the object has the same size and modtime (a same-size edit kept at the same time).
        await rcloneOk(['copy', dir, remote(prefix), '--ignore-times', '--no-unicode-normalization']);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    putObject(prefix, path, content) {
      const key = [prefix, path].filter((s) => s !== '').join('/');
      const url = `${endpoint}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
      const body = Buffer.from(content);
      return new Promise((resolve, reject) => {
        const req = request(url, { method: 'PUT', headers: { 'content-length': body.length } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${url}: ${res.statusCode} ${text}`))));
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    async deleteFiles(prefix, paths) {
      const dir = scratch();
      try {
        await writeTree(dir, { 'list.txt': paths.map((p) => `${p}\n`).join('') });
        await rcloneOk(['delete', remote(prefix), '--files-from-raw', join(dir, 'list.txt')]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    log: () => output.slice(-LOG_LIMIT),
    running: () => !exited,
    async stop() {
      if (!exited) await stopChild(child, ended);
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
