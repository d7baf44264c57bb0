/**
 * The hand-written lsjson line reader gives exactly what JSON.parse + Date.parse give: a table of
 * the lines rclone prints (names with quotes, backslashes, Go's \u escapes, unicode, odd times)
 * and a property over random entries encoded the way Go's encoding/json encodes them.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { modTimeMs, parseLsjsonBytes, parseLsjsonLine, slowParse } from '../../src/rclone/lsjson-line.ts';

/** Both readers of a line: from a string, and from its bytes inside a larger chunk of output. */
function parsedBothWays(line: string, hashType?: string) {
  const fromString = parseLsjsonLine(line, hashType);
  const chunk = Buffer.from(`{"Path":"before"}\n${line}\n[`);
  const start = chunk.indexOf('\n') + 1;
  expect(parseLsjsonBytes(chunk, start, chunk.lastIndexOf('\n'), hashType)).toEqual(fromString);
  return fromString;
}

/** What parseListLine in rclone.ts does today (the reference). */
function reference(line: string, hashType?: string) {
  const text = line.endsWith(',') ? line.slice(0, -1) : line;
  if (!text.startsWith('{')) return undefined;
  return slowParse(text, hashType);
}

/** Go's encoding/json string encoding (HTML-safe: <, >, & and U+2028/9 as \u escapes). */
function goString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd'; // a lone surrogate is not UTF-8: Go prints U+FFFD
    else out += ch;
  }
  return `${out}"`;
}

function lsjsonLine(e: { path: string; size: number; modTime: string; isDir: boolean; hashes?: Record<string, string>; mime?: string; id?: string }, last = false): string {
  const name = e.path.split('/').at(-1)!;
  const fields = [`"Path":${goString(e.path)}`, `"Name":${goString(name)}`, `"Size":${e.size}`];
  if (e.mime !== undefined) fields.push(`"MimeType":${goString(e.mime)}`);
  fields.push(`"ModTime":"${e.modTime}"`, `"IsDir":${e.isDir}`);
  if (e.hashes) fields.push(`"Hashes":{${Object.entries(e.hashes).map(([k, v]) => `"${k}":"${v}"`).join(',')}}`);
  if (e.id !== undefined) fields.push(`"ID":${goString(e.id)}`);
  return `{${fields.join(',')}}${last ? '' : ','}`;
}

const T = '2026-12-01T13:16:41.123456789Z';

describe('parseLsjsonLine', () => {
  const table: [string, string, string?][] = [
    ['plain', lsjsonLine({ path: 'd0/e0/f0.txt', size: 100, modTime: T, isDir: false })],
    ['last line (no comma)', lsjsonLine({ path: 'a', size: 0, modTime: T, isDir: false }, true)],
    ['folder', lsjsonLine({ path: 'd0/e0', size: -1, modTime: T, isDir: true })],
    ['quote in name', lsjsonLine({ path: 'say "hi".txt', size: 1, modTime: T, isDir: false })],
    ['backslashes', lsjsonLine({ path: 'a\\b\\\\c\\', size: 1, modTime: T, isDir: false })],
    ['backslash then quote', lsjsonLine({ path: '\\"', size: 1, modTime: T, isDir: false })],
    ['html escapes', lsjsonLine({ path: '<a&b>.txt', size: 1, modTime: T, isDir: false })],
    ['control characters', lsjsonLine({ path: 'tab\there\nnew\u0001line\u007f', size: 1, modTime: T, isDir: false })],
    ['unicode', lsjsonLine({ path: 'Ünïcødé/日本語/😀 emoji/\u2028sep', size: 7, modTime: T, isDir: false })],
    ['replacement character', lsjsonLine({ path: 'bad\ufffdname', size: 7, modTime: T, isDir: false })],
    ['surrogate pair escaped', '{"Path":"\\ud83d\\ude00","Name":"x","Size":1,"ModTime":"2026-12-01T13:16:41Z","IsDir":false},'],
    ['slash escaped', '{"Path":"a\\/b","Name":"b","Size":1,"ModTime":"2026-12-01T13:16:41Z","IsDir":false},'],
    ['hash asked', lsjsonLine({ path: 'h', size: 3, modTime: T, isDir: false, hashes: { md5: 'abc', sha1: 'def' } }), 'sha1'],
    ['hash not there', lsjsonLine({ path: 'h', size: 3, modTime: T, isDir: false, hashes: { md5: 'abc' } }), 'sha1'],
    ['hash empty', lsjsonLine({ path: 'h', size: 3, modTime: T, isDir: false, hashes: { md5: '' } }), 'md5'],
    ['empty hashes', lsjsonLine({ path: 'h', size: 3, modTime: T, isDir: false, hashes: {} }), 'md5'],
    ['mime type and ID', lsjsonLine({ path: 'm', size: 3, modTime: T, isDir: false, mime: 'text/plain; charset="utf-8"', id: '1\\2' })],
    ['no fraction', lsjsonLine({ path: 'a', size: 1, modTime: '2026-12-01T13:16:41Z', isDir: false })],
    ['one fraction digit', lsjsonLine({ path: 'a', size: 1, modTime: '2026-12-01T13:16:41.5Z', isDir: false })],
    ['two fraction digits', lsjsonLine({ path: 'a', size: 1, modTime: '2026-12-01T13:16:41.05Z', isDir: false })],
    ['offset', lsjsonLine({ path: 'a', size: 1, modTime: '2026-12-01T13:16:41.999999999+05:30', isDir: false })],
    ['negative offset', lsjsonLine({ path: 'a', size: 1, modTime: '2000-02-29T23:59:59.001-08:00', isDir: false })],
    ['before 1970', lsjsonLine({ path: 'a', size: 1, modTime: '1969-12-31T23:59:59.999Z', isDir: false })],
    ['year 1', lsjsonLine({ path: 'a', size: 1, modTime: '0001-01-01T00:00:00Z', isDir: false })],
    ['not a leap day', lsjsonLine({ path: 'a', size: 1, modTime: '2100-02-29T00:00:00Z', isDir: false })],
    ['hour 24 (Date.parse decides)', lsjsonLine({ path: 'a', size: 1, modTime: '2026-12-01T24:00:00Z', isDir: false })],
    ['unreadable time', lsjsonLine({ path: 'a', size: 1, modTime: 'yesterday', isDir: false })],
    ['big size', lsjsonLine({ path: 'a', size: 9_007_199_254_740_991, modTime: T, isDir: false })],
    ['unknown key (Metadata)', '{"Path":"a","Name":"a","Size":1,"ModTime":"2026-12-01T13:16:41Z","IsDir":false,"Metadata":{"k":"v"}},'],
    ['other key order', '{"IsDir":false,"ModTime":"2026-12-01T13:16:41Z","Size":1,"Name":"a","Path":"x/a"}'],
    ['whitespace', '{ "Path": "a", "Size": 1, "ModTime": "2026-12-01T13:16:41Z", "IsDir": false }'],
    ['bucket', '{"Path":"b","Name":"b","Size":-1,"ModTime":"2026-12-01T13:16:41Z","IsDir":true,"IsBucket":true},'],
    ['hashes then ID', '{"Path":"a","Name":"a","Size":1,"ModTime":"2026-12-01T13:16:41Z","IsDir":false,"Hashes":{"md5":"ab"},"ID":"x"},', 'md5'],
    ['repeated hash', '{"Path":"a","Name":"a","Size":1,"ModTime":"2026-12-01T13:16:41Z","IsDir":false,"Hashes":{"md5":"ab","md5":"cd"}},', 'md5'],
    ['base64 hash', '{"Path":"a","Name":"a","Size":1,"ModTime":"2026-12-01T13:16:41Z","IsDir":false,"Hashes":{"quickxor":"q+/0="}},', 'quickxor'],
    ['sixteen-digit size', lsjsonLine({ path: 'a', size: 1_234_567_890_123_456, modTime: T, isDir: false })],
    ['negative zero size', '{"Path":"a","Name":"a","Size":-0,"ModTime":"2026-12-01T13:16:41Z","IsDir":false}'],
  ];
  test.each(table)('%s', (_, line, hashType) => {
    expect(parsedBothWays(line, hashType)).toEqual(reference(line, hashType));
  });

  test('array brackets are not entries', () => {
    expect(parseLsjsonLine('[')).toBeUndefined();
    expect(parseLsjsonLine(']')).toBeUndefined();
  });

  test('malformed JSON throws as JSON.parse does', () => {
    expect(() => parseLsjsonLine('{"Path":"a\\x","Size":1}')).toThrow(SyntaxError);
    expect(() => parseLsjsonLine('{"Path":')).toThrow(SyntaxError);
    const bytes = (line: string) => parseLsjsonBytes(Buffer.from(line), 0, Buffer.byteLength(line));
    for (const bad of ['{"Path":"a","Name":"a","Size":1,"ModTime":"2026-12-01T13:16:41Z","IsDir":false,"Hashes":{"md5":"ab",}}', '{"Path":"a","Name":"a","Size":01,"ModTime":"x","IsDir":false}', '{"Path":"a","Name":"a","Size":1,"ModTime":"2026-12-01T13:16:41Z","IsDir":fals}']) {
      expect(() => bytes(bad), bad).toThrow(SyntaxError);
    }
  });
});

/** A time the way Go's RFC3339Nano prints it: trailing fraction zeros dropped, Z or an offset. */
const goTime = fc
  .record({
    ms: fc.integer({ min: -62_135_596_800_000 + 86_400_000, max: 253_402_300_799_000 - 86_400_000 }),
    nanos: fc.integer({ min: 0, max: 999_999 }),
    digits: fc.integer({ min: 0, max: 9 }),
    offset: fc.oneof(fc.constant(0), fc.integer({ min: -14 * 60, max: 14 * 60 })),
  })
  .map(({ ms, nanos, digits, offset }) => {
    const shifted = new Date(ms + offset * 60_000).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
    const fraction = `${shifted.slice(20, 23)}${String(nanos).padStart(6, '0')}`.slice(0, digits).replace(/0+$/, '');
    const sign = offset < 0 ? '-' : '+';
    const abs = Math.abs(offset);
    const zone = offset === 0 ? 'Z' : `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
    return `${shifted.slice(0, 19)}${fraction ? `.${fraction}` : ''}${zone}`;
  });

const name = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: fc.constantFrom('a', '"', '\\', '/', '<', '&', '\u2028', 'é', '😀', '\n', ' '), maxLength: 12 }));

describe('parseLsjsonLine matches JSON.parse + Date.parse', () => {
  test('on random entries as rclone prints them', () => {
    fc.assert(
      fc.property(
        fc.array(name, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: -1, max: Number.MAX_SAFE_INTEGER }),
        goTime,
        fc.boolean(),
        fc.option(fc.dictionary(fc.constantFrom('md5', 'sha1', 'crc32', 'quickxor'), fc.stringMatching(/^[0-9a-f]{0,40}$/)), { nil: undefined }),
        fc.constantFrom(undefined, 'md5', 'sha1'),
        fc.boolean(),
        (parts, size, modTime, isDir, hashes, hashType, last) => {
          const line = lsjsonLine({ path: parts.join('/'), size, modTime, isDir, ...(hashes ? { hashes } : {}) }, last);
          expect(parsedBothWays(line, hashType)).toEqual(reference(line, hashType));
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('on any string escaped any valid way', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), fc.array(fc.boolean(), { maxLength: 30 }), (path, escapeEach) => {
        // JSON.stringify, then some characters written as \u escapes instead.
        const chars = [...path];
        const quoted = `"${chars.map((ch, k) => (escapeEach[k] ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}${ch.length > 1 ? `\\u${ch.charCodeAt(1).toString(16).padStart(4, '0')}` : ''}` : JSON.stringify(ch).slice(1, -1))).join('')}"`;
        const line = `{"Path":${quoted},"Name":"n","Size":5,"ModTime":"${T}","IsDir":false},`;
        expect(parsedBothWays(line)).toEqual(reference(line));
      }),
      { numRuns: 3000 },
    );
  });

  test('modTimeMs is Date.parse on every Go time', () => {
    fc.assert(fc.property(goTime, (text) => {
      expect(modTimeMs(text)).toBe(Date.parse(text));
    }), { numRuns: 10_000 });
  });
});
