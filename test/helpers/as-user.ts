/**
 * Running the CLI as an unprivileged uid. Tests run as root, where every permission check passes
 * (root may read and write anything), so a test of "the running uid cannot write here" must run the
 * CLI as someone else: `setpriv` (util-linux) drops to `nobody` before Node starts. Whatever that
 * uid must reach (the sandbox's folders, TMPDIR) has to be opened up for it first: `openTo`.
 */
import { existsSync } from 'node:fs';
import { chmod, chown } from 'node:fs/promises';
import { runCli, type CliResult, type Env } from './processes.ts';

/** nobody:nogroup on Debian. */
export const NOBODY = { uid: 65534, gid: 65534 } as const;

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));

/** Whether a test can drop to another uid here (root with setpriv). */
export const canRunAsNobody = SETPRIV !== undefined && process.getuid?.() === 0;

/** `node src/cli.ts ...args` as uid:gid nobody, with no supplementary groups. Never rejects on a non-zero exit. */
export function runCliAsNobody(args: readonly string[], env: Env, options: { timeoutMs?: number } = {}): Promise<CliResult> {
  const dropToNobody = [SETPRIV!, `--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups'];
  // Node's compile cache and rclone's cache would go to root's HOME otherwise.
  return runCli(args, { HOME: env.TMPDIR ?? '/tmp', ...env }, { ...options, command: dropToNobody });
}

/** Lets nobody enter the sandbox root (mkdtemp makes it 0700) and own `owned` (TMPDIR, say). */
export async function openTo(root: string, owned: readonly string[] = []): Promise<void> {
  await chmod(root, 0o755);
  for (const folder of owned) await chown(folder, NOBODY.uid, NOBODY.gid);
}
