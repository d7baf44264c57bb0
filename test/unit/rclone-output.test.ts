/**
 * The rclone output parsers, in process, fed with output recorded from real rclone 1.60.1
 * (test/fixtures/rclone/*.txt; how each was made is in the README there): lsjson lines, `lsl`
 * lines, the JSON stats lines on stderr, and the line of a failing call's stderr that becomes the
 * error message. A new rclone version that prints differently should fail here first, with the
 * recording to compare.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastMeaningfulLine, parseListLine as parseListBytes, parseLongListing, parseStats, summarizeLogLine } from '../../src/rclone/rclone.ts';

const parseListLine = (line: string, hashType: string | undefined, onFolder?: (path: string) => void) => parseListBytes(Buffer.from(line), 0, Buffer.byteLength(line), hashType, onFolder);

const recorded = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'rclone', name));
const linesOf = (name: string) => recorded(name).toString('utf8').split('\n').filter((line) => line !== '');

/** What the recorded source folder held (see the fixtures' README). */
const A_TXT = { size: 6, mtime: Date.parse('2021-03-04T05:06:07.123Z') };

describe('lsjson lines (rclone lsjson -R --files-only --no-mimetype --hash-type md5)', () => {
  const parsed = linesOf('lsjson.txt').map((line) => parseListLine(line, 'md5'));

  it('the brackets around the array are no entries; every other line is one file with its hash', () => {
    expect(parsed[0]).toBeUndefined();
    expect(parsed.at(-1)).toBeUndefined();
    expect(parsed.filter((entry) => entry !== undefined).map((entry) => entry!.path)).toEqual(['a.txt', 'sub/with space é.txt', 'sub/deeper/zeros.bin']);
  });

  it('size, modtime (to the millisecond of rclone\'s nanoseconds) and md5', () => {
    expect(parsed[1]).toEqual({ path: 'a.txt', meta: { ...A_TXT, hash: 'b1946ac92492d2347c6235b4d2611184' } });
    expect(parsed[3]).toMatchObject({ path: 'sub/deeper/zeros.bin', meta: { size: 70_000, hash: '874410694fa6ef97accb67ea8decd9ca' } });
  });

  it('without a hash type asked for, no hash is kept, even when the line has one', () => {
    expect(parseListLine(linesOf('lsjson.txt')[1]!, undefined)).toEqual({ path: 'a.txt', meta: { ...A_TXT, hash: '' } });
    expect(parseListLine(linesOf('lsjson.txt')[1]!, 'sha1')).toEqual({ path: 'a.txt', meta: { ...A_TXT, hash: '' } });
  });

  it('with folders listed (no --files-only), a folder goes to onFolder and is no file', () => {
    const folders: string[] = [];
    const files = linesOf('lsjson-dirs.txt')
      .map((line) => parseListLine(line, undefined, (path) => folders.push(path)))
      .filter((entry) => entry !== undefined)
      .map((entry) => entry!.path);
    expect(folders).toEqual(['sub', 'sub/deeper']);
    expect(files).toEqual(['a.txt', 'sub/with space é.txt', 'sub/deeper/zeros.bin']);
  });
});

describe('lsl lines (TZ=UTC rclone lsl --human-readable=false)', () => {
  it('size, the UTC modtime and the name, spaces and all', () => {
    const entries = parseLongListing(recorded('lsl.txt'));
    expect(entries.map((e) => e.path)).toEqual(['a.txt', 'sub/with space é.txt', 'sub/deeper/zeros.bin']);
    expect(entries[0]).toEqual({ path: 'a.txt', ...A_TXT });
    expect(entries[2]).toMatchObject({ size: 70_000 });
  });

  it('lines that are not listing lines are passed over', () => {
    expect(parseLongListing(Buffer.from('2026/12/01 13:29:10 NOTICE: something\n\n'))).toEqual([]);
  });
});

describe('stats lines (rclone copy --use-json-log --stats 1s --stats-log-level NOTICE)', () => {
  const lines = linesOf('copy-stats.txt');
  const stats = lines.map(parseStats).filter((s) => s !== undefined);

  it('only the stats lines are stats: not the config warning, the bandwidth note or "Copied (new)"', () => {
    expect(lines.filter((line) => line.includes('"stats":{')).length).toBe(stats.length);
    expect(stats.length).toBeGreaterThanOrEqual(2);
    for (const line of lines.filter((l) => !l.includes('"stats":{'))) expect(parseStats(line)).toBeUndefined();
  });

  it('carries bytes, files and the other counters as rclone reports them', () => {
    expect(stats[0]).toEqual({ bytes: 32_780, totalBytes: 70_012, transfers: 2, totalTransfers: 3, errors: 0, checks: 0, deletes: 0, renames: 0 });
    expect(stats.at(-1)).toMatchObject({ bytes: 70_012, totalBytes: 70_012, transfers: 3, totalTransfers: 3 });
  });

  it('a cut-off or foreign line is no stats, and does not throw', () => {
    expect(parseStats(lines.find((l) => l.includes('"stats":{'))!.slice(0, 120))).toBeUndefined();
    expect(parseStats('Transferred: 1 / 2, 50%')).toBeUndefined();
    expect(parseStats('{"level":"info","msg":"no stats here","stats":null}')).toBeUndefined();
  });
});

describe('the error message from a failing call\'s stderr', () => {
  it('a missing folder: rclone\'s last line, its date prefix cut', () => {
    expect(lastMeaningfulLine(linesOf('lsjson-missing.txt'))).toBe('Failed to lsjson with 2 errors: last error was: error in ListJSON: directory not found');
  });

  it('a server that refuses connections', () => {
    expect(lastMeaningfulLine(linesOf('lsjson-refused.txt'))).toBe(
      'Failed to create file system for "dead:share": NewFs: couldn\'t connect SSH: dial tcp 127.0.0.1:1: connect: connection refused',
    );
  });

  it('a remote that is not defined', () => {
    expect(lastMeaningfulLine(linesOf('copy-unknown-remote.txt'))).toBe('Failed to create file system for "nosuchremote:x": didn\'t find section in config file');
  });

  it('a JSON log line as the last line becomes "object: msg", or the msg alone without an object', () => {
    const [, error] = linesOf('lsjson-missing.txt');
    expect(summarizeLogLine(error!)).toBe('error listing: directory not found');
    const copied = linesOf('copy-stats.txt').find((l) => l.includes('Copied (new)'))!;
    expect(summarizeLogLine(copied)).toBe('a.txt: Copied (new)');
    expect(lastMeaningfulLine(linesOf('lsjson-missing.txt').slice(0, 2))).toBe('error listing: directory not found');
  });

  it('blank lines at the end are passed over; nothing at all is no message', () => {
    expect(lastMeaningfulLine([...linesOf('lsjson-refused.txt'), '', '   '])).toMatch(/connection refused$/);
    expect(lastMeaningfulLine([])).toBe('');
  });

  it('a credential in the line is masked', () => {
    expect(lastMeaningfulLine(['2026/12/01 13:29:12 Failed to copy: Get "https://user:s3cret@example.com/x": dial tcp: refused'])).not.toContain('s3cret');
  });
});
