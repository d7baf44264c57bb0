/**
 * `rclone serve sftp /` on 127.0.0.1 and a free port, for the local↔SFTP runs: path2 is then
 * `benchsftp:<absolute local folder>`, so the bench changes the served files directly. The server
 * caches no listings (--dir-cache-time 0), and the remote is defined by RCLONE_CONFIG_BENCHSFTP_*
 * alone (password auth, no agent, no key files, our own host key).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { delayProxy } from './delay-proxy.ts';

export const SFTP_REMOTE = 'benchsftp';

export interface Sftp {
  /** The remote path for a local absolute folder. */
  pathOf(localFolder: string): string;
  /** What a client (rclonesync, bisync, lsjson) needs in its environment. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => (socket.destroy(), resolve(false)));
  });
}

/** `latencyMs`: clients reach the server through a proxy that delays every chunk this long each way (delay-proxy.ts). */
export async function startSftp(latencyMs = 0): Promise<Sftp> {
  const keyDir = await mkdtemp(join(tmpdir(), 'rs-bench-sftp-'));
  const { privateKey } = generateKeyPairSync('ed25519', { privateKeyEncoding: { format: 'pem', type: 'pkcs8' }, publicKeyEncoding: { format: 'pem', type: 'spki' } });
  const keyFile = join(keyDir, 'host_ed25519');
  await writeFile(keyFile, privateKey, { mode: 0o600 });
  await writeFile(join(keyDir, 'authorized_keys'), '', { mode: 0o600 });
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const port = await freePort();
  const server: ChildProcess = spawn(
    'rclone',
    ['serve', 'sftp', '/', '--addr', `127.0.0.1:${port}`, '--user', 'bench', '--pass', password, '--key', keyFile, '--authorized-keys', join(keyDir, 'authorized_keys'), '--dir-cache-time', '0s'],
    { env: { ...process.env, RCLONE_CONFIG: join(keyDir, 'none.conf') }, stdio: 'ignore' },
  );
  const deadline = Date.now() + 15_000;
  while (!(await listening(port))) {
    if (Date.now() > deadline || server.exitCode !== null) {
      server.kill('SIGKILL');
      throw new Error(`rclone serve sftp did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const proxy = latencyMs > 0 ? await delayProxy(port, latencyMs) : undefined;
  const { stdout } = await promisify(execFile)('rclone', ['obscure', password]);
  const prefix = `RCLONE_CONFIG_${SFTP_REMOTE.toUpperCase()}_`;
  const env = {
    [`${prefix}TYPE`]: 'sftp',
    [`${prefix}HOST`]: '127.0.0.1',
    [`${prefix}PORT`]: String(proxy?.port ?? port),
    [`${prefix}USER`]: 'bench',
    [`${prefix}PASS`]: stdout.trim(),
    [`${prefix}KEY_USE_AGENT`]: 'false',
  };
  return {
    pathOf: (folder) => `${SFTP_REMOTE}:${folder}`,
    env,
    async stop() {
      const exited = new Promise((r) => server.once('exit', r));
      await proxy?.close();
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (server.exitCode === null) server.kill('SIGKILL');
      await rm(keyDir, { recursive: true, force: true });
    },
  };
}
