/**
 * Running the CLI as an unprivileged uid. Tests run as root, where every permission check passes
 * (root may read and write anything), so a test of "the running uid cannot write here" must run the
 * CLI as someone else: `setpriv` (util-linux) drops to `nobody` before Node starts. Whatever that
 * uid must reach (the sandbox's folders, TMPDIR) has to be opened up for it first: `openTo`.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { chmod, chown } from 'node:fs/promises';
import { CLI, REPO_ROOT, cleanEnv, parseLogLines, type CliResult, type Env } from './cli.ts';

/** nobody:nogroup on Debian. */
export const NOBODY = { uid: 65534, gid: 65534 } as const;

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));

/** Whether a test can drop to another uid here (root with setpriv). */
export const canRunAsNobody = SETPRIV !== undefined && process.getuid?.() === 0;

/** `node src/cli.ts ...args` as uid:gid nobody, with no supplementary groups. Never rejects on a non-zero exit. */
export async function runCliAsNobody(args: readonly string[], env: Env, options: { timeoutMs?: number } = {}): Promise<CliResult> {
  const started = Date.now();
  const result = await execa(SETPRIV!, [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups', process.execPath, CLI, ...args], {
    // Node's compile cache and rclone's cache would go to root's HOME otherwise.
    env: cleanEnv({ HOME: env.TMPDIR ?? '/tmp', ...env }),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    cwd: REPO_ROOT,
    timeout: options.timeoutMs ?? 60_000,
  });
  const stdout = String(result.stdout ?? '');
  const endedAt = Date.now();
  return { exitCode: result.exitCode ?? -1, stdout, stderr: String(result.stderr ?? ''), logs: parseLogLines(stdout), durationMs: endedAt - started, endedAt };
}

/** Lets nobody enter the sandbox root (mkdtemp makes it 0700) and own `owned` (TMPDIR, say). */
export async function openTo(root: string, owned: readonly string[] = []): Promise<void> {
  await chmod(root, 0o755);
  for (const folder of owned) await chown(folder, NOBODY.uid, NOBODY.gid);
}
