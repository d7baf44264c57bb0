/**
 * Which remotes rclone knows, asked of rclone itself (`rclone listremotes`): the sections of its
 * config file, whatever its location and even when encrypted (with RCLONE_CONFIG_PASS), plus the
 * remotes defined by RCLONE_CONFIG_<NAME>_TYPE variables. One short call before a run, so that a
 * mistyped remote is a configuration error naming the remotes that do exist.
 */
import { execa } from 'execa';

export type RemoteList =
  | { readonly kind: 'listed'; readonly names: readonly string[] }
  | { readonly kind: 'no-binary' }
  /** rclone could not tell (an encrypted config without its password, say): the run will find out. */
  | { readonly kind: 'unknown'; readonly reason: string };

export async function listRemotes(binary: string, env: NodeJS.ProcessEnv = process.env): Promise<RemoteList> {
  // --ask-password=false: an encrypted config without RCLONE_CONFIG_PASS fails at once instead of prompting.
  const result = await execa(binary, ['listremotes', '--ask-password=false'], { env, extendEnv: false, stdin: 'ignore', reject: false, timeout: 30_000 });
  if ((result as { code?: string }).code === 'ENOENT') return { kind: 'no-binary' };
  if (result.exitCode !== 0) {
    const last = String(result.stderr ?? '').trim().split('\n').at(-1) ?? '';
    return { kind: 'unknown', reason: last || `exit code ${result.exitCode ?? 'none'}` };
  }
  const names = String(result.stdout ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.endsWith(':'))
    .map((line) => line.slice(0, -1));
  return { kind: 'listed', names };
}
