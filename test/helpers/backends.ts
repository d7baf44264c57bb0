/**
 * Scenarios written once and run against each kind of path2: a local folder, or a folder served by
 * `rclone serve sftp` (which caches no listings, so it sees edits made behind it). A test file
 * calls `useBackend(kind)` inside a `describe.each(BACKENDS)`; `currentBackend()` then tells where
 * path2's files are on this machine and what a run needs in its environment.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { type Env } from './processes.ts';
import { type SftpServer, startSftpServer } from './remotes/sftp-server.ts';
import { makeSandbox, type Sandbox } from './sandbox.ts';

export interface Backend {
  /** The folder holding path2's files (for SFTP: the folder the server serves). */
  readonly dir2: string;
  /** Added to every run's environment. */
  readonly env: Env;
  /** More to show when a run fails (the server's log). */
  readonly detail: () => string;
}

export type BackendKind = 'local' | 'sftp';
export const BACKENDS: readonly { readonly kind: BackendKind; readonly name: string }[] = [
  { kind: 'local', name: 'local↔local' },
  { kind: 'sftp', name: 'local↔SFTP' },
];

let backend: Backend | undefined;

export function currentBackend(): Backend {
  if (!backend) throw new Error('no backend: call useBackend in the describe');
  return backend;
}

/** Environment and failure detail for `useSandbox`, following whichever backend the test runs on. */
export const backendRunEnv = (): Env => backend?.env ?? {};
export const backendDetail = (): string => backend?.detail() ?? '';

/** Gives every test of the enclosing describe its path2 on `kind`; `localPath2` is the sandbox's path2. */
export function useBackend(kind: BackendKind, localPath2: () => string, remoteName = 'testsftp'): void {
  if (kind === 'local') {
    beforeEach(() => {
      backend = { dir2: localPath2(), env: {}, detail: () => '' };
    });
    return;
  }
  let server: SftpServer | undefined;
  let served: Sandbox | undefined;
  let pairs = 0;
  beforeAll(async () => {
    served = await makeSandbox('rs-served-');
    server = await startSftpServer(served.root, { remoteName });
  });
  afterAll(async () => {
    await server?.stop();
    await served?.cleanup();
  });
  beforeEach(async () => {
    const name = `pair-${++pairs}`;
    const dir2 = join(served!.root, name);
    await mkdir(dir2);
    const log = server!;
    backend = { dir2, env: { ...server!.clientEnv(), SYNC_PATH2: server!.remote(name) }, detail: () => `--- sftp server ---\n${log.log()}` };
  });
}
