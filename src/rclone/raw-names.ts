/**
 * File names that are not valid UTF-8 (a Latin-1 `gro\xdf` on a local disk, rclone's corpus
 * `file3_\x19_\x81_\xfe`). rclone keeps such names as raw bytes internally on every backend (its
 * standard encoding has no InvalidUtf8; backends that cannot store them, such as S3 or SFTP by
 * default, write `‛FE` and decode it back on reading), so no encoding option makes them valid
 * UTF-8 on the way out of a local disk. What loses them is lsjson: Go's JSON encoder prints every
 * invalid byte as U+FFFD, and a copy by that name then finds nothing.
 *
 * Inside rclonesync such a name is a string in which each invalid byte 0xXY is the lone surrogate
 * U+DCXY (Python's "surrogateescape"): valid UTF-8 never decodes to a lone surrogate, so the
 * mapping is exact both ways, and JSON.stringify writes it as "\udcfe" in snapshots and journals
 * (and JSON.parse reads it back). Going to rclone, such strings become the original bytes again:
 * in file lists (written as bytes) and on command lines (through /bin/sh's printf, as Node cannot
 * put arbitrary bytes into argv).
 */

/** A byte that is not valid UTF-8, as held in a name (the `u` flag keeps surrogate pairs out). */
const RAW_BYTE = /[\uDC80-\uDCFF]/u;
const RAW_BYTES = /[\uDC80-\uDCFF]/gu;
/** What lsjson prints in place of each invalid byte. */
export const REPLACEMENT = '\uFFFD';

export function hasRawBytes(name: string): boolean {
  return RAW_BYTE.test(name);
}

/** rclone's bytes for a name: UTF-8, each escaped byte as itself. */
export function encodeName(name: string): Buffer {
  if (!hasRawBytes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (const match of name.matchAll(RAW_BYTES)) {
    parts.push(Buffer.from(name.slice(start, match.index), 'utf8'), Buffer.of(match[0].charCodeAt(0) - 0xdc00));
    start = match.index + 1;
  }
  parts.push(Buffer.from(name.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * A name from rclone's bytes. A byte is invalid exactly where Go's decoder says so (one byte at a
 * time: a truncated sequence is two bad bytes, an encoded surrogate three), so the U+FFFD count
 * lsjson prints and the escapes here line up one for one.
 */
export function decodeName(bytes: Buffer): string {
  let out = '';
  let runStart = 0;
  let i = 0;
  while (i < bytes.length) {
    const length = validSequenceLength(bytes, i);
    if (length > 0) {
      i += length;
      continue;
    }
    out += bytes.toString('utf8', runStart, i) + String.fromCharCode(0xdc00 + bytes[i]!);
    i += 1;
    runStart = i;
  }
  return out + bytes.toString('utf8', runStart, i);
}

/** The length of the valid UTF-8 sequence at `i` (RFC 3629: shortest form, no surrogates, ≤ U+10FFFF), 0 if none. */
function validSequenceLength(bytes: Buffer, i: number): number {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return 1;
  const continuation = (at: number, low = 0x80, high = 0xbf) => at < bytes.length && bytes[at]! >= low && bytes[at]! <= high;
  if (b0 >= 0xc2 && b0 <= 0xdf) return continuation(i + 1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const [low, high] = b0 === 0xe0 ? [0xa0, 0xbf] : b0 === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return continuation(i + 1, low, high) && continuation(i + 2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const [low, high] = b0 === 0xf0 ? [0x90, 0xbf] : b0 === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return continuation(i + 1, low, high) && continuation(i + 2) && continuation(i + 3) ? 4 : 0;
  }
  return 0;
}

/** The name as lsjson prints it. */
export function lossyName(name: string): string {
  return name.replace(RAW_BYTES, REPLACEMENT);
}

/** For log lines and messages: each invalid byte as `\xFE`. */
export function printableName(name: string): string {
  return name.replace(RAW_BYTES, (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16).toUpperCase()}`);
}

/** `name` with rclone's glob characters escaped, so that a filter rule matches exactly that name. */
export const globEscaped = (name: string): string => name.replace(/[\\*?[\]{}]/g, '\\$&');

/**
 * An rclone filter rule matching a name lsjson printed, anchored at the root: glob characters are
 * escaped and each U+FFFD becomes `?`, which matches one invalid byte (or a real U+FFFD).
 */
export function includeRuleFor(lossy: string): string {
  // Whitespace too: rclone trims the lines of a filter file. Whatever else `?` lets through is
  // sorted out by comparing lossy names.
  return `+ /${globEscaped(lossy).replace(/[\uFFFD\s]/gu, '?')}`;
}

/**
 * A command line that may carry escaped bytes, as one /bin/sh can run: each argument is given as
 * a printf %b escape string and rebuilt before `exec` (so the process, and its PR_SET_PDEATHSIG,
 * stays the same).
 */
export function viaShell(command: readonly string[]): string[] {
  // `x` guards trailing newlines, which command substitution would strip.
  const script = `for a do shift; b=$(printf '%bx' "$a"); set -- "$@" "\${b%x}"; done; exec "$@"`;
  return ['/bin/sh', '-c', script, 'sh', ...command.map(printfEscape)];
}

function printfEscape(arg: string): string {
  let out = '';
  for (const byte of encodeName(arg)) {
    out += byte === 0x5c ? '\\\\' : byte >= 0x80 ? `\\0${byte.toString(8)}` : String.fromCharCode(byte);
  }
  return out;
}
