/**
 * One line of `rclone lsjson` output, read without JSON.parse and Date.parse in the common case.
 *
 * lsjson prints one object a line, always the same few keys (Path, Name, Size, MimeType, ModTime,
 * IsDir, Hashes, ID, OrigID, Tier, IsBucket, Encrypted, EncryptedPath). This reads those keys by
 * hand: a string without a backslash is a slice of the line; one with escapes goes to JSON.parse
 * on its own (so every escape Go's encoder writes — \", \\, \u003c, \u2028, surrogate pairs — is
 * read exactly as JSON.parse reads it). The time "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" is
 * computed directly, milliseconds truncated as V8's Date.parse does. Anything else (another key,
 * a value of an unexpected kind, a malformed line, an unusual time) falls back to JSON.parse and
 * Date.parse, so the result is always what they give.
 */

import { ownString } from '../own-string.ts';
import { BACKSLASH, CLOSE_BRACE, COLON, COMMA, OPEN_BRACE, QUOTE } from '../bytes.ts';

export interface LsjsonEntry {
  readonly path: string;
  /** -1 when the remote does not know. */
  readonly size: number;
  /** Milliseconds since the epoch, as Date.parse(ModTime) gives (NaN if it cannot read it). */
  readonly mtime: number;
  /** The hash of hashType, '' if not asked for or not given. */
  readonly hash: string;
  readonly isDir: boolean;
}

interface LsjsonItem {
  Path: string;
  Size: number;
  ModTime: string;
  IsDir: boolean;
  Hashes?: Record<string, string>;
}


/** Thrown inside the fast path to switch to JSON.parse (never escapes this module). */
class Unusual extends Error {}
const UNUSUAL = new Unusual();

/** The line without its trailing comma, or undefined for "[" and "]" lines (what parseListLine skips). */
export function parseLsjsonLine(line: string, hashType?: string): LsjsonEntry | undefined {
  const end = line.charCodeAt(line.length - 1) === COMMA ? line.length - 1 : line.length;
  if (line.charCodeAt(0) !== OPEN_BRACE) return undefined;
  try {
    return fastParse(line, end, hashType);
  } catch (error) {
    if (error !== UNUSUAL) throw error;
    return slowParse(end === line.length ? line : line.slice(0, end), hashType);
  }
}

/**
 * The same, read from the bytes of rclone's output (the line is bytes[start, end), without its
 * newline). The shape lsjson prints for nearly every entry — Path, Name, Size, ModTime, IsDir and
 * maybe Hashes, in that order, no escapes — is read straight from the bytes, the path decoded on
 * its own into a string that holds only itself (see own-string.ts); any other line is decoded
 * and goes to parseLsjsonLine. So the result is always parseLsjsonLine's.
 */
export function parseLsjsonBytes(bytes: Buffer, start: number, end: number, hashType?: string): LsjsonEntry | undefined {
  const stop = bytes[end - 1] === COMMA ? end - 1 : end;
  return commonShape(bytes, start, stop, hashType) ?? parseLsjsonLine(bytes.toString('utf8', start, end), hashType);
}

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
const PATH_KEY = ascii('{"Path":"');
const NAME_KEY = ascii('","Name":"');
const SIZE_KEY = ascii('","Size":');
const MODTIME_KEY = ascii(',"ModTime":"');
const ISDIR_KEY = ascii('","IsDir":');
const HASHES_KEY = ascii(',"Hashes":{');
const TRUE = ascii('true');
const FALSE = ascii('false');
/** Beyond this many digits a size may not be exact as a double: JSON.parse decides. */
const MOST_DIGITS = 15;

/** The cursor of commonShape (module state, as for fastParse). */
let pos = 0;

function token(bytes: Buffer, expected: Uint8Array): boolean {
  for (let i = 0; i < expected.length; i++) if (bytes[pos + i] !== expected[i]) return false;
  pos += expected.length;
  return true;
}

/** The end of a string's content at the cursor: its closing quote, or -1 for an escape, a control character or a non-ASCII byte when asked. */
function plainString(bytes: Buffer, stop: number, asciiOnly: boolean): number {
  for (let at = pos; at < stop; at++) {
    const c = bytes[at]!;
    if (c === QUOTE) return at;
    if (c === BACKSLASH || c < 0x20 || (asciiOnly && c >= 0x80)) return -1;
  }
  return -1;
}

function commonShape(bytes: Buffer, start: number, stop: number, hashType: string | undefined): LsjsonEntry | undefined {
  pos = start;
  if (!token(bytes, PATH_KEY)) return undefined;
  const pathEnd = plainString(bytes, stop, false);
  if (pathEnd === -1) return undefined;
  const path = bytes.toString('utf8', pos, pathEnd);
  pos = pathEnd;
  if (!token(bytes, NAME_KEY)) return undefined;
  const nameEnd = plainString(bytes, stop, false);
  if (nameEnd === -1) return undefined;
  pos = nameEnd;
  if (!token(bytes, SIZE_KEY)) return undefined;
  const negative = bytes[pos] === 0x2d;
  if (negative) pos++;
  const digitsStart = pos;
  let size = 0;
  for (let c = bytes[pos]!; pos < stop && c >= 0x30 && c <= 0x39; c = bytes[++pos]!) size = size * 10 + (c - 0x30);
  const digits = pos - digitsStart;
  if (digits === 0 || digits > MOST_DIGITS || (digits > 1 && bytes[digitsStart] === 0x30)) return undefined;
  if (negative) size = -size;
  if (!token(bytes, MODTIME_KEY)) return undefined;
  const timeEnd = plainString(bytes, stop, true);
  if (timeEnd === -1) return undefined;
  const mtime = modTimeMs(bytes.toString('latin1', pos, timeEnd));
  pos = timeEnd;
  if (!token(bytes, ISDIR_KEY)) return undefined;
  let isDir: boolean;
  if (token(bytes, TRUE)) isDir = true;
  else if (token(bytes, FALSE)) isDir = false;
  else return undefined;
  let hash = '';
  if (token(bytes, HASHES_KEY)) {
    for (let more = bytes[pos] !== CLOSE_BRACE; more; ) {
      if (bytes[pos] !== QUOTE) return undefined;
      pos++;
      const nameEnd = plainString(bytes, stop, true);
      if (nameEnd === -1 || bytes[nameEnd + 1] !== COLON || bytes[nameEnd + 2] !== QUOTE) return undefined;
      const name = bytes.toString('latin1', pos, nameEnd);
      pos = nameEnd + 3;
      const valueEnd = plainString(bytes, stop, true);
      if (valueEnd === -1) return undefined;
      // The last of a repeated key wins, as with JSON.parse.
      if (name === hashType) hash = bytes.toString('latin1', pos, valueEnd);
      pos = valueEnd + 1;
      more = bytes[pos] === COMMA;
      if (more) pos++;
      else if (bytes[pos] !== CLOSE_BRACE) return undefined;
    }
    pos++;
  }
  if (bytes[pos] !== CLOSE_BRACE || pos + 1 !== stop) return undefined;
  return { path, size, mtime, hash, isDir };
}

/** What JSON.parse + Date.parse make of the object text (the reference the fast path matches). */
export function slowParse(text: string, hashType?: string): LsjsonEntry {
  const item = JSON.parse(text) as LsjsonItem;
  return { path: item.Path, size: item.Size, mtime: Date.parse(item.ModTime), hash: (hashType && item.Hashes?.[hashType]) || '', isDir: item.IsDir };
}

/** Index of the quote closing the string whose content starts at start. */
function stringEnd(line: string, start: number, end: number): number {
  let close = line.indexOf('"', start);
  // An escaped quote: the backslashes before it are odd in number. Rare (names with a quote).
  while (close !== -1 && close < end && line.charCodeAt(close - 1) === BACKSLASH) {
    let backslashes = 1;
    while (line.charCodeAt(close - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) break;
    close = line.indexOf('"', close + 1);
  }
  if (close === -1 || close >= end) throw UNUSUAL;
  return close;
}

// The fast path's cursor: module state rather than closures, which cost an allocation a line.
let src = '';
let at = 0;
let stop = 0;

/** A string value starting at `at` (its opening quote); `at` moves past the closing one. */
function readString(): string {
  if (src.charCodeAt(at) !== QUOTE) throw UNUSUAL;
  const close = stringEnd(src, at + 1, stop);
  const raw = src.slice(at + 1, close);
  const value = raw.includes('\\') ? (JSON.parse(src.slice(at, close + 1)) as string) : raw;
  at = close + 1;
  return value;
}

function skipString(): void {
  if (src.charCodeAt(at) !== QUOTE) throw UNUSUAL;
  const close = stringEnd(src, at + 1, stop);
  // Escapes must still be valid JSON (JSON.parse would throw on a bad one).
  if (src.lastIndexOf('\\', close) > at) JSON.parse(src.slice(at, close + 1));
  at = close + 1;
}

function readBoolean(): boolean {
  if (src.startsWith('true', at)) return (at += 4), true;
  if (src.startsWith('false', at)) return (at += 5), false;
  throw UNUSUAL;
}

function readSize(): number {
  let j = at;
  if (src.charCodeAt(j) === 0x2d) j++;
  const digitsStart = j;
  let value = 0;
  for (let c = src.charCodeAt(j); c >= 0x30 && c <= 0x39; c = src.charCodeAt(++j)) value = value * 10 + (c - 0x30);
  // JSON forbids leading zeros; fractions and exponents are not lsjson's; beyond 15 digits Number() decides.
  if (j === digitsStart || j - digitsStart > 15 || (src.charCodeAt(digitsStart) === 0x30 && j - digitsStart > 1)) throw UNUSUAL;
  const negative = digitsStart !== at;
  at = j;
  return negative ? -value : value;
}

/** `"Key":` at the cursor: the key (moved past the colon). */
function readKey(): string {
  if (src.charCodeAt(at) !== QUOTE) throw UNUSUAL;
  const keyEnd = src.indexOf('"', at + 1);
  if (keyEnd === -1 || src.charCodeAt(keyEnd + 1) !== COLON) throw UNUSUAL;
  const key = src.slice(at + 1, keyEnd);
  at = keyEnd + 2;
  return key;
}

function readHash(hashType: string | undefined): string {
  if (src.charCodeAt(at) !== OPEN_BRACE) throw UNUSUAL;
  at++;
  let hash = '';
  if (src.charCodeAt(at) === CLOSE_BRACE) return at++, hash;
  for (;;) {
    const name = readString();
    if (src.charCodeAt(at) !== COLON) throw UNUSUAL;
    at++;
    const value = readString();
    // The last of a repeated key wins, as with JSON.parse.
    if (name === hashType) hash = ownString(value);
    const next = src.charCodeAt(at++);
    if (next === CLOSE_BRACE) return hash;
    if (next !== COMMA) throw UNUSUAL;
  }
}

function fastParse(line: string, end: number, hashType: string | undefined): LsjsonEntry {
  src = line;
  stop = end;
  at = 1;
  let path: string | undefined;
  let size: number | undefined;
  let mtime: number | undefined;
  let isDir: boolean | undefined;
  let hash = '';
  for (;;) {
    switch (readKey()) {
      case 'Path':
        // Its own copy: a slice would keep the whole chunk of rclone's output alive (own-string.ts).
        path = ownString(readString());
        break;
      case 'Size':
        size = readSize();
        break;
      case 'ModTime':
        mtime = modTimeMs(readString());
        break;
      case 'IsDir':
        isDir = readBoolean();
        break;
      case 'IsBucket':
        readBoolean();
        break;
      case 'Name':
      case 'MimeType':
      case 'ID':
      case 'OrigID':
      case 'Tier':
      case 'Encrypted':
      case 'EncryptedPath':
        skipString();
        break;
      case 'Hashes':
        // A repeated Hashes key replaces the whole object, as with JSON.parse.
        hash = readHash(hashType);
        break;
      default:
        throw UNUSUAL;
    }
    const next = line.charCodeAt(at++);
    if (next === CLOSE_BRACE) break;
    if (next !== COMMA) throw UNUSUAL;
  }
  src = '';
  if (at !== end || path === undefined || size === undefined || mtime === undefined || isDir === undefined) throw UNUSUAL;
  return { path, size, mtime, hash, isDir };
}

const digit = (text: string, at: number): number => {
  const d = text.charCodeAt(at) - 0x30;
  if (d < 0 || d > 9) throw UNUSUAL;
  return d;
};
const two = (text: string, at: number) => digit(text, at) * 10 + digit(text, at + 1);

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const year = m <= 2 ? y - 1 : y;
  const era = Math.floor(year / 400);
  const yoe = year - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468;
}

/**
 * Date.parse for rclone's RFC 3339 times, by hand: "YYYY-MM-DDTHH:MM:SS[.digits](Z|±HH:MM)".
 * Milliseconds are the first three fraction digits (the rest dropped, as V8 does). Any other text,
 * or a field out of range, goes to Date.parse itself.
 */
export function modTimeMs(text: string): number {
  try {
    return fastModTime(text);
  } catch (error) {
    if (error !== UNUSUAL) throw error;
    return Date.parse(text);
  }
}

function fastModTime(t: string): number {
  if (t.length < 20 || t.charCodeAt(4) !== 0x2d || t.charCodeAt(7) !== 0x2d || t.charCodeAt(10) !== 0x54 || t.charCodeAt(13) !== COLON || t.charCodeAt(16) !== COLON) throw UNUSUAL;
  const year = two(t, 0) * 100 + two(t, 2);
  const month = two(t, 5);
  const day = two(t, 8);
  const hour = two(t, 11);
  const minute = two(t, 14);
  const second = two(t, 17);
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]! + (leap ? 1 : 0) || hour > 23 || minute > 59 || second > 59) throw UNUSUAL;
  let i = 19;
  let ms = 0;
  if (t.charCodeAt(i) === 0x2e) {
    i++;
    const start = i;
    while (i < t.length && t.charCodeAt(i) >= 0x30 && t.charCodeAt(i) <= 0x39) {
      if (i - start < 3) ms = ms * 10 + (t.charCodeAt(i) - 0x30);
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 9) throw UNUSUAL;
    if (digits === 1) ms *= 100;
    else if (digits === 2) ms *= 10;
  }
  let offsetMinutes = 0;
  const zone = t.charCodeAt(i);
  if (zone === 0x5a && i + 1 === t.length) {
    // Z
  } else if ((zone === 0x2b || zone === 0x2d) && i + 6 === t.length && t.charCodeAt(i + 3) === COLON) {
    const hours = two(t, i + 1);
    const minutes = two(t, i + 4);
    if (hours > 23 || minutes > 59) throw UNUSUAL;
    offsetMinutes = (zone === 0x2b ? 1 : -1) * (hours * 60 + minutes);
  } else throw UNUSUAL;
  return ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute - offsetMinutes) * 60_000 + second * 1000 + ms;
}
