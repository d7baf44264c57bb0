/**
 * How rclone reads a path: a local folder, a configured remote (`name:path`, `name,opt=v:path`) or
 * an on-the-fly backend (`:sftp,host=...:path`). The same rules as rclone's fspath.Parse, so that
 * the start-of-run checks look at the side the way rclone will. Pure: no rclone call.
 */

export type RclonePath =
  | { readonly kind: 'local'; readonly path: string }
  | { readonly kind: 'remote'; readonly name: string; readonly path: string }
  | { readonly kind: 'on-the-fly'; readonly backend: string; readonly path: string };

export function parseRclonePath(text: string): RclonePath {
  // rclone: a path without a colon, or whose first ':' or ',' comes after a path separator, is local.
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (i === 0 && c === ':') continue;
    if (c === '/' || c === '\\') break;
    if (c !== ':' && c !== ',') continue;
    const name = text.slice(0, i);
    const rest = text.slice(text.indexOf(':', i) + 1);
    if (name.startsWith(':')) return { kind: 'on-the-fly', backend: name.slice(1), path: rest };
    // A Windows drive letter ("C:") is a local path to rclone.
    if (/^[A-Za-z]$/.test(name) && c === ':') break;
    return { kind: 'remote', name, path: rest };
  }
  return { kind: 'local', path: text };
}

/** What two paths must share to be on the same remote: 'local', the remote's name, or the on-the-fly backend string. */
export function remoteOf(text: string): string {
  const path = parseRclonePath(text);
  return path.kind === 'local' ? 'local' : path.kind === 'remote' ? `${path.name}:` : `:${path.backend}:`;
}

/** rclone's variable for a remote's type (`RCLONE_CONFIG_MYS3_TYPE` defines `mys3:`). */
export function remoteTypeVariable(name: string): string {
  return `RCLONE_CONFIG_${name.toUpperCase()}_TYPE`;
}
