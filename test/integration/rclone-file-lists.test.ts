/**
 * The lists of paths handed to rclone (`--files-from-raw`) are written a piece at a time, so that
 * a first run's list of 1M paths is never held whole. A list longer than one piece must arrive
 * whole and byte for byte: every line, none split at a piece's edge, and names that are not valid
 * UTF-8 (held here as lone surrogates U+DCXY) written as their original bytes in any piece.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { Rclone } from '../../src/rclone/rclone.ts';

const root = await mkdtemp(join(tmpdir(), 'rs-file-lists-'));
afterAll(() => rm(root, { recursive: true, force: true }));

/** 4,000 paths of ~90 characters: about 360,000 characters, more than one piece (256 Ki). */
const FILES = 4_000;
const nameOf = (i: number) => `folder-${i % 40}/${'n'.repeat(70)}-${i}${i === 0 || i === FILES - 1 ? '-\udcfe' : ''}.txt`;
/** The bytes rclone and the disk know the name by. */
const bytesOf = (name: string) => Buffer.from(name.replace('\udcfe', '\xfe'), 'latin1');

it('copies every path of a list longer than one piece, raw names in the first and the last', { timeout: 60_000 }, async () => {
  const from = join(root, 'from');
  const to = join(root, 'to');
  for (let f = 0; f < 40; f++) await mkdir(join(from, `folder-${f}`), { recursive: true });
  await Promise.all(Array.from({ length: FILES }, (_, i) => writeFile(Buffer.concat([Buffer.from(`${from}/`), bytesOf(nameOf(i))]), `content ${i}`)));
  // A decoy that is not listed: only the listed paths may travel.
  await writeFile(join(from, 'folder-0', 'not-listed.txt'), 'stays');

  const rclone = new Rclone({ binary: 'rclone', logger: pino({ level: 'silent' }), workDir: join(root, 'work'), env: { RCLONE_CONFIG: '/nonexistent' } });
  try {
    await rclone.copyFiles(from, to, Array.from({ length: FILES }, (_, i) => nameOf(i)), { checksum: false, walkDestination: true });
  } finally {
    await rclone.dispose();
  }

  let copied = 0;
  for (let f = 0; f < 40; f++) copied += (await readdir(join(to, `folder-${f}`))).length;
  expect(copied).toBe(FILES);
  for (const i of [0, 1, 2_000, FILES - 2, FILES - 1]) {
    expect(await readFile(Buffer.concat([Buffer.from(`${to}/`), bytesOf(nameOf(i))]), 'utf8')).toBe(`content ${i}`);
  }
});
