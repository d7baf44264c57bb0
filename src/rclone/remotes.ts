/**
 * Which remotes rclone knows, asked of rclone itself (`rclone listremotes`): the sections of its
 * config file, whatever its location and even when encrypted (with RCLONE_CONFIG_PASS), plus the
 * remotes defined by RCLONE_CONFIG_<NAME>_TYPE variables. One short call before a run, so that a
 * mistyped remote is a configuration error naming the remotes that do exist.
 */
import { spawnChild, SubprocessError } from './subprocess.ts';

export type RemoteList =
  | { readonly kind: 'listed'; readonly names: readonly string[] }
  | { readonly kind: 'no-binary' }
  /** rclone could not tell (an encrypted config without its password, say): the run will find out. */
  | { readonly kind: 'unknown'; readonly reason: string };

export async function listRemotes(binary: string, env: NodeJS.ProcessEnv = process.env): Promise<RemoteList> {
  // --ask-password=false: an encrypted config without RCLONE_CONFIG_PASS fails at once instead of prompting.
  const child = spawnChild(binary, ['listremotes', '--ask-password=false'], { env, stdout: 'collect', timeoutMs: 30_000, forceKillAfterMs: 3000 });
  const stderr: string[] = [];
  const drained = (async () => {
    for await (const line of child.stderrLines) stderr.push(line);
  })();
  let stdout: string;
  try {
    ({ stdout } = await child.done);
  } catch (error) {
    await drained;
    if (!(error instanceof SubprocessError)) throw error;
    if (error.code === 'ENOENT') return { kind: 'no-binary' };
    const last = stderr.join('\n').trim().split('\n').at(-1) ?? '';
    return { kind: 'unknown', reason: last || (error.timedOut ? 'no answer in 30 s' : `exit code ${error.exitCode ?? 'none'}`) };
  }
  const names = stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.endsWith(':'))
    .map((line) => line.slice(0, -1));
  return { kind: 'listed', names };
}
