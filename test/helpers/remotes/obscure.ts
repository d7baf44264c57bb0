/**
 * `rclone obscure` in Node, for remotes defined by RCLONE_CONFIG_<NAME>_PASS: the SFTP server the
 * integration tests start on loopback and the one the container tests start in a container both
 * need it, and the container tests' machine need not have rclone.
 */
import { createCipheriv, randomBytes } from 'node:crypto';

// rclone's fixed key for `rclone obscure` (fs/config/obscure): AES-256-CTR, random IV first, base64url.
const OBSCURE_KEY = Buffer.from('9c935b48730a554d6bfd7c63c886a92bd390198eb8128afbf4de162b8b95f638', 'hex');

export function obscure(password: string): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-ctr', OBSCURE_KEY, iv);
  return Buffer.concat([iv, cipher.update(password, 'utf8'), cipher.final()]).toString('base64url');
}
