/**
 * Scenarios written once and run against each kind of path2 (as rclone's bisync tests run one set
 * of scenarios against every remote): a local folder; a folder served by `rclone serve sftp`
 * (which caches no listings, so it sees edits made behind it; modtimes to the second); or a prefix
 * in an S3 bucket served by s3rver (no folders, only keys; modtimes in rclone's metadata, to the
 * nanosecond; seen and changed only through the S3 API).
 *
 * A test file calls `useBackend(kind, ...)` inside a `describe.each(BACKENDS)` (or
 * `DISK_BACKENDS`, for scenarios that edit path2's files on disk behind the server's back);
 * `currentBackend()` then tells what a run needs in its environment and reads and changes path2 the
 * way that backend allows (`side2`).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import type { Env } from './processes.ts';
import { startS3Server, type S3Server } from './remotes/s3-server.ts';
import { startSftpServer, type SftpServer } from './remotes/sftp-server.ts';
import { makeSandbox, type Sandbox } from './sandbox.ts';
import { readTree, removeFile, statTree, writeTree, type Tree } from './trees.ts';

/** path2 as a test reads and changes it: on disk, or through the S3 API. */
export interface Side2 {
  readTree(): Promise<Record<string, string>>;
  /** Writes `tree` (with `mtime` as every file's modification time, when given). */
  writeTree(tree: Tree, mtime?: Date): Promise<void>;
  remove(paths: readonly string[]): Promise<void>;
  /** Each file's modification time in nanoseconds (a decimal string), as the backend keeps it. */
  modTimesNs(): Promise<Record<string, string>>;
  /** What changes whenever any file (or, on S3, its metadata) is written again: "nothing rewritten" is this staying equal. */
  fingerprint(): Promise<unknown>;
}

export interface Backend {
  /** The folder holding path2's files on this machine (local, SFTP); S3 has none and throws. */
  readonly dir2: string;
  /** Added to every run's environment. */
  readonly env: Env;
  /** More to show when a run fails (the server's log). */
  readonly detail: () => string;
  readonly side2: Side2;
}

export type BackendKind = 'local' | 'sftp' | 's3';

export interface BackendTraits {
  readonly kind: BackendKind;
  readonly name: string;
  /** The backend's modtime precision in nanoseconds (rclone's `Precision`). */
  readonly precisionNs: bigint;
  /** The hash `SYNC_COMPARE=checksum` settles on with a local path1. */
  readonly checksumHash: string;
  /** How the pair's state folder is named after path2 (the end of `status --json`'s `pair`). */
  readonly pairName: RegExp;
  /**
   * A file two folders down whose top folder holds nothing else. s3rver leaves a prefix that holds
   * only prefixes out of a delimited listing (real S3 does not), and rclone lists with a delimiter
   * once there are exclude rules (the engine's trash rule): on S3 the top folder also holds a file.
   */
  readonly deepFile: string;
}

const PAIR_ID = String.raw`-[0-9a-f]{12}$`;
export const BACKENDS: readonly BackendTraits[] = [
  { kind: 'local', name: 'local↔local', precisionNs: 1n, checksumHash: 'md5', pairName: new RegExp(String.raw`_path1__.*_path2${PAIR_ID}`), deepFile: 'deep/er/e.txt' },
  { kind: 'sftp', name: 'local↔SFTP', precisionNs: 1_000_000_000n, checksumHash: 'md5', pairName: new RegExp(String.raw`_path1__testsftp_pair-\d+${PAIR_ID}`), deepFile: 'deep/er/e.txt' },
  { kind: 's3', name: 'local↔S3', precisionNs: 1n, checksumHash: 'md5', pairName: new RegExp(String.raw`_path1__tests3_rclonesync_pair-\d+${PAIR_ID}`), deepFile: 'dir/er/e.txt' },
];
/** The backends whose path2 is a folder on this machine's disk, which a test may change behind the server's back. */
export const DISK_BACKENDS = BACKENDS.filter((b) => b.kind !== 's3');

let backend: Backend | undefined;

export function currentBackend(): Backend {
  if (!backend) throw new Error('no backend: call useBackend in the describe');
  return backend;
}

/** Environment and failure detail for `useSandbox`, following whichever backend the test runs on. */
export const backendRunEnv = (): Env => backend?.env ?? {};
export const backendDetail = (): string => backend?.detail() ?? '';

/** path2 as a folder on disk (local, or the folder an SFTP server serves). */
function diskSide(dir: string): Side2 {
  return {
    readTree: () => readTree(dir),
    writeTree: (tree, mtime) => writeTree(dir, tree, mtime),
    async remove(paths) {
      for (const path of paths) await removeFile(dir, path);
    },
    async modTimesNs() {
      return Object.fromEntries(Object.entries(await statTree(dir)).map(([path, s]) => [path, s.mtimeNs]));
    },
    fingerprint: () => statTree(dir),
  };
}

/** An RFC 3339 time with up to nanoseconds (as rclone lists it) in nanoseconds since the epoch. */
export function nsOf(time: string): string {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!match) throw new Error(`not an RFC 3339 time: ${time}`);
  const seconds = BigInt(Date.parse(`${match[1]}${match[3]}`) / 1000);
  return (seconds * 1_000_000_000n + BigInt((match[2] ?? '').padEnd(9, '0'))).toString();
}

/** path2 as a prefix in an S3 bucket, through the S3 API. */
function s3Side(server: S3Server, prefix: string): Side2 {
  return {
    readTree: () => server.readTree(prefix),
    writeTree: (tree, mtime) => server.writeTree(prefix, tree, mtime),
    remove: (paths) => server.deleteFiles(prefix, paths),
    async modTimesNs() {
      return Object.fromEntries(Object.entries(await server.list(prefix)).map(([path, o]) => [path, nsOf(o.modTime)]));
    },
    // s3rver's own files for the prefix change with any write, its listing with any metadata change.
    fingerprint: async () => ({ store: await statTree(server.storeDir(prefix)), objects: await server.list(prefix) }),
  };
}

/** Starts a server for the enclosing describe and gives each test a fresh path2 on it. */
function useServer<S extends { stop(): Promise<void>; log(): string }>(
  start: (served: Sandbox) => Promise<S>,
  pairOn: (server: S, served: Sandbox, name: string) => Promise<Backend>,
): void {
  let server: S | undefined;
  let served: Sandbox | undefined;
  let pairs = 0;
  beforeAll(async () => {
    served = await makeSandbox('rs-served-');
    server = await start(served);
  });
  afterAll(async () => {
    await server?.stop();
    await served?.cleanup();
  });
  beforeEach(async () => {
    backend = await pairOn(server!, served!, `pair-${++pairs}`);
  });
}

/**
 * Gives every test of the enclosing describe its path2 on `kind`; `localPath2` is the sandbox's
 * path2. `remoteName` names the remote in the variables that define it.
 */
export function useBackend(kind: BackendKind, localPath2: () => string, remoteName?: string): void {
  if (kind === 'local') {
    beforeEach(() => {
      const dir2 = localPath2();
      backend = { dir2, env: {}, detail: () => '', side2: diskSide(dir2) };
    });
    return;
  }
  if (kind === 'sftp') {
    useServer(
      (served) => startSftpServer(served.root, { remoteName: remoteName ?? 'testsftp' }),
      async (server: SftpServer, served, name) => {
        const dir2 = join(served.root, name);
        await mkdir(dir2);
        return { dir2, env: { ...server.clientEnv(), SYNC_PATH2: server.remote(name) }, detail: () => `--- sftp server ---\n${server.log()}`, side2: diskSide(dir2) };
      },
    );
    return;
  }
  useServer(
    () => startS3Server({ remoteName: remoteName ?? 'tests3' }),
    async (server: S3Server, _, prefix) => ({
      get dir2(): string {
        throw new Error('S3 keeps no folder on disk: read and change path2 through currentBackend().side2');
      },
      env: { ...server.clientEnv(), SYNC_PATH2: server.remote(prefix) },
      detail: () => `--- s3rver ---\n${server.log().slice(-4000)}`,
      side2: s3Side(server, prefix),
    }),
  );
}
