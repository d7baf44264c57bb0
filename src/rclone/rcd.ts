/**
 * One long-lived `rclone rcd` per run, for the per-file work rclone cannot batch with
 * `--files-from-raw` (conflict renames, moves, folders made or removed one by one): each such
 * operation is an HTTP call to it instead of an rclone process of its own. It listens on a random
 * 127.0.0.1 port with a random user and password (passed in its environment, never in argv, so
 * `ps` does not show them); `Rclone` (rclone.ts) starts it lazily, under the same
 * `setpriv --pdeathsig KILL` wrapper as every other rclone, and stops it when the run ends.
 *
 * rclone 1.60 has no unix socket for rc; the random credentials keep other local users out.
 */
import { randomBytes } from 'node:crypto';
import type { Agent } from 'node:http';

/**
 * node:http, fetched when a run first calls rcd. An ESM import of it (even of two names) reads
 * every export, and its lazy ones load undici: ~10 ms of every run's start-up, calls or not.
 */
const http = () => process.getBuiltinModule('node:http');

/** rclone said no to one call. `status` is rc's HTTP status (404: the object or folder is not there). */
export class RcCallError extends Error {
  readonly status: number;
  readonly method: string;
  constructor(method: string, status: number, message: string) {
    super(`rclone rc ${method} failed (${status}): ${message}`);
    this.name = 'RcCallError';
    this.status = status;
    this.method = method;
  }
  get notFound(): boolean {
    return this.status === 404;
  }
}

/** What `rclone rcd` prints once it listens (1.60: `NOTICE: Serving remote control on http://127.0.0.1:PORT/`). */
const SERVING = /Serving remote control on (https?:\/\/[^\s/]+)\/?/;

export function servingAddress(line: string): string | undefined {
  return SERVING.exec(line)?.[1];
}

export interface RcCredentials {
  readonly user: string;
  readonly pass: string;
}

export const randomCredentials = (): RcCredentials => ({ user: `rs-${randomBytes(6).toString('hex')}`, pass: randomBytes(24).toString('base64url') });

/** The arguments and environment `rclone rcd` starts with. */
export function rcdCommand(credentials: RcCredentials): { args: string[]; env: Record<string, string> } {
  return {
    // Jobs are synchronous calls; nothing needs to linger. No web GUI, no file serving.
    args: ['rcd', '--rc-addr', '127.0.0.1:0'],
    env: { RCLONE_RC_USER: credentials.user, RCLONE_RC_PASS: credentials.pass },
  };
}

/**
 * A running `rclone rcd`: calls go to `address` with basic auth, over a few kept-alive
 * connections. node:http rather than fetch: undici spent about 0.8 ms of CPU per call here, five
 * times what the call costs rclone, which made 10,000 moves cost seconds.
 */
export class RcClient {
  private readonly address: string;
  private readonly auth: string;
  private readonly signal: AbortSignal | undefined;
  private readonly agent: Agent = new (http().Agent)({ keepAlive: true, maxSockets: 32 });

  constructor(address: string, credentials: RcCredentials, signal?: AbortSignal) {
    this.address = address;
    this.auth = `Basic ${Buffer.from(`${credentials.user}:${credentials.pass}`).toString('base64')}`;
    this.signal = signal;
  }

  call(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const payload = JSON.stringify(params);
      const outgoing = http().request(
        `${this.address}/${method}`,
        {
          method: 'POST',
          agent: this.agent,
          headers: { authorization: this.auth, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          ...(this.signal ? { signal: this.signal } : {}),
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: Record<string, unknown> = {};
            try {
              body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
            } catch {
              body = { error: text.slice(0, 200) };
            }
            const status = response.statusCode ?? 0;
            if (status < 200 || status >= 300) reject(new RcCallError(method, status, typeof body.error === 'string' ? body.error : (response.statusMessage ?? '')));
            else resolve(body);
          });
        },
      );
      outgoing.on('error', reject);
      outgoing.end(payload);
    });
  }

  /** Closes the kept-alive connections (the server is about to stop). */
  close(): void {
    this.agent.destroy();
  }
}
