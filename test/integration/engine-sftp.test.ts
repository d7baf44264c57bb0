/**
 * What only an SFTP path2 shows: the remote is defined by RCLONE_CONFIG_<NAME>_* variables alone
 * (`rclone serve sftp` on loopback), with RCLONE_CONFIG pointing at a file that does not exist and
 * the password obscured. The scenarios every backend shares run on SFTP in engine-scenarios.test.ts.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { backendDetail, backendRunEnv, currentBackend, useBackend } from '../helpers/backends.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { writeTree } from '../helpers/trees.ts';

const { sandbox: sb, ok } = useSandbox('rs-sftp-', { runEnv: backendRunEnv, failureDetail: backendDetail });

describe('sftp remote configured only through RCLONE_CONFIG_* variables', () => {
  useBackend('sftp', () => sb.path2, 'itsftp');

  it('the environment defines the remote, no config file exists, and a run works with that alone', async () => {
    const remoteEnv = currentBackend().env;
    const env = sb.env(remoteEnv);
    expect(env.RCLONE_CONFIG).toMatch(/no-rclone\.conf$/);
    await expect(readFile(env.RCLONE_CONFIG!)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(Object.keys(remoteEnv).filter((k) => k.startsWith('RCLONE_CONFIG_ITSFTP_')).sort()).toEqual(
      ['RCLONE_CONFIG_ITSFTP_HOST', 'RCLONE_CONFIG_ITSFTP_KEY_USE_AGENT', 'RCLONE_CONFIG_ITSFTP_PASS', 'RCLONE_CONFIG_ITSFTP_PORT', 'RCLONE_CONFIG_ITSFTP_TYPE', 'RCLONE_CONFIG_ITSFTP_USER'],
    );
    // The password is obscured, not in clear.
    expect(remoteEnv.RCLONE_CONFIG_ITSFTP_PASS).not.toMatch(/^pw-/);

    await writeTree(sb.path1, { 'a.txt': 'a' });
    await ok();
    expect(await currentBackend().side2.readTree()).toEqual({ 'a.txt': 'a' });
  });
});
