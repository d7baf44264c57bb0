/**
 * A real network remote for integration tests: `rclone serve sftp <dir>` on a free loopback port,
 * with password authentication and its own host key (so nothing is written to ~/.cache/rclone).
 *
 * Clients reach it through a remote defined ONLY by environment variables
 * (RCLONE_CONFIG_<NAME>_TYPE=sftp, _HOST, _PORT, _USER, _PASS obscured): `clientEnv()` returns them.
 * No known_hosts file is configured (host keys are not checked) and no ssh-agent or key file is
 * used, so nothing prompts. Tests change the served folder directly, so the server caches no
 * directory listings (--dir-cache-time 0s; its default of 5 minutes would hide those changes). Hash commands are left to rclone's shell detection: `rclone serve
 * sftp` answers md5sum/sha1sum itself, which gives the remote md5 and sha1 like a real server.
 */
import { execa, type ResultPromise } from 'execa';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, freePort, stopChild } from '../processes.ts';
import { obscure } from './obscure.ts';

export interface SftpServer {
  /** The served folder. */
  readonly dir: string;
  readonly port: number;
  readonly user: string;
  /** The remote name the env defines (upper case in the variables, as given in paths). */
  readonly remoteName: string;
  /** `<remoteName>:<path>` */
  remote(path?: string): string;
  /** RCLONE_CONFIG_<NAME>_* for a client: the remote is defined by these variables alone. */
  clientEnv(): Record<string, string>;
  /** The server's log so far (for assertion messages). */
  log(): string;
  stop(): Promise<void>;
}

export interface SftpServerOptions {
  readonly remoteName?: string;
  readonly user?: string;
  readonly password?: string;
  /** Listen on this port instead of a free one (to restart a server where a remote points). */
  readonly port?: number;
  readonly startTimeoutMs?: number;
}

/** The client side of a remote: RCLONE_CONFIG_<NAME>_* only. */
export function sftpClientEnv(remoteName: string, port: number, user: string, password: string): Record<string, string> {
  const prefix = `RCLONE_CONFIG_${remoteName.toUpperCase()}_`;
  return {
    [`${prefix}TYPE`]: 'sftp',
    [`${prefix}HOST`]: '127.0.0.1',
    [`${prefix}PORT`]: String(port),
    [`${prefix}USER`]: user,
    [`${prefix}PASS`]: obscure(password),
    // Never consult an ssh agent or any key file of the machine running the tests.
    [`${prefix}KEY_USE_AGENT`]: 'false',
  };
}

export async function startSftpServer(dir: string, options: SftpServerOptions = {}): Promise<SftpServer> {
  const remoteName = options.remoteName ?? 'testsftp';
  const user = options.user ?? 'test';
  const password = options.password ?? `pw-${Math.random().toString(36).slice(2)}`;
  const keyDir = await mkdtemp(join(tmpdir(), 'rs-sftp-key-'));
  // Our own host key: without --key, rclone generates (and caches) an RSA key in ~/.cache, slowly,
  // and two servers starting at once would race on it.
  const key = generateKeyPairSync('ed25519', { privateKeyEncoding: { format: 'pem', type: 'pkcs8' }, publicKeyEncoding: { format: 'pem', type: 'spki' } });
  const keyFile = join(keyDir, 'host_ed25519');
  await writeFile(keyFile, key.privateKey, { mode: 0o600 });
  // No public keys may log in: password only, and ~/.ssh/authorized_keys is not read.
  const authorizedKeys = join(keyDir, 'authorized_keys');
  await writeFile(authorizedKeys, '', { mode: 0o600 });

  const timeout = options.startTimeoutMs ?? 15_000;
  const attempts = options.port === undefined ? 3 : 1;
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = options.port ?? (await freePort());
    let output = '';
    const child: ResultPromise = execa(
      'rclone',
      ['serve', 'sftp', dir, '--addr', `127.0.0.1:${port}`, '--user', user, '--pass', password, '--key', keyFile, '--authorized-keys', authorizedKeys,
        // The served folder is changed behind the server's back by tests: no directory caching.
        '--dir-cache-time', '0s'],
      { env: { ...process.env, RCLONE_CONFIG: join(keyDir, 'no-rclone.conf') }, extendEnv: false, reject: false, stdin: 'ignore', buffer: false },
    );
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    let exited = false;
    const ended = child.then(() => {
      exited = true;
    });
    const deadline = Date.now() + timeout;
    let up = false;
    while (!exited && Date.now() < deadline) {
      if (await canConnect(port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!up) {
      child.kill('SIGKILL');
      await ended;
      lastError = new Error(`rclone serve sftp did not start on port ${port}: ${output}`);
      continue;
    }
    const clientEnv = sftpClientEnv(remoteName, port, user, password);
    return {
      dir,
      port,
      user,
      remoteName,
      remote: (path = '') => `${remoteName}:${path}`,
      clientEnv: () => ({ ...clientEnv }),
      log: () => output,
      async stop() {
        if (!exited) await stopChild(child, ended);
        await rm(keyDir, { recursive: true, force: true });
      },
    };
  }
  await rm(keyDir, { recursive: true, force: true });
  throw lastError ?? new Error('rclone serve sftp did not start');
}
