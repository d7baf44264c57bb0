/**
 * The listings that the snapshot describes exactly, as their blocks' digests (rclone/listing-blocks.ts):
 * written by a run that found nothing to change, so that the next run, if its listings hold the
 * same blocks, knows nothing changed without reading the snapshot or a line of its listings.
 *
 * It stands for one snapshot file and one set of settings only: it records the snapshot's inode,
 * size and modification time (a commit writes a new file and renames it over) and a digest of the
 * settings (a changed setting can change what the same listing means: a new access-check file,
 * other filters). Anything that does not match, or a file we cannot read, means "unknown", and the
 * run reads everything as it always did. It is only ever a shortcut, so it is not fsynced.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { Side } from '../model.ts';
import type { BlockDigests, BlockRecord, ExpectedBlocks } from '../rclone/listing-blocks.ts';

const FORMAT = 'rclonesync-listing-digests';
/** 2 since each block's folder and subfolders are kept (version 1 files are not read: the next run reads everything once). */
const VERSION = 2;

/** A block as stored: digest, files, folder (null when unknown), the folders its lines name. */
type StoredBlock = [string, number, string | null, string[]];

interface StoredDigests {
  readonly format: typeof FORMAT;
  readonly version: typeof VERSION;
  readonly snapshot: string;
  readonly settings: string;
  /** Per side, whether the snapshot holds every file exactly as the blocks' lines print it (see BlockComparison). */
  readonly exact: Record<Side, boolean>;
  readonly path1: StoredBlock[];
  readonly path2: StoredBlock[];
}

/**
 * A digest of the settings a run's outcome may depend on. Left out: what cannot change the outcome
 * of a run whose listings are the same (the rclone binary: another one that lists differently
 * lists other bytes; the stall timeout; a dry run; who lists a local side, rclone or rclonesync,
 * which print the same bytes when rclone runs with TZ=UTC, and otherwise only blocks that do not
 * match, read whole once), and `resync`, which never uses the digests.
 */
export function settingsDigest(settings: object): string {
  return createHash('sha256')
    .update(JSON.stringify({ ...settings, rcloneBinary: '', stallTimeoutMs: 0, dryRun: false, resync: false, localListing: undefined }))
    .digest('base64');
}

/** The identity of the snapshot file as it is now; undefined when there is none. */
async function snapshotIdentity(snapshotFile: string): Promise<string | undefined> {
  try {
    const info = await stat(snapshotFile, { bigint: true });
    return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}`;
  } catch {
    return undefined;
  }
}

/** The digests stored for this snapshot file and these settings, or undefined. */
export async function readListingDigests(file: string, snapshotFile: string, settings: string): Promise<Record<Side, ExpectedBlocks> | undefined> {
  let stored: StoredDigests;
  try {
    stored = JSON.parse(await readFile(file, 'utf8')) as StoredDigests;
  } catch {
    return undefined;
  }
  if (stored?.format !== FORMAT || stored.version !== VERSION || stored.settings !== settings || !Array.isArray(stored.path1) || !Array.isArray(stored.path2)) return undefined;
  const identity = await snapshotIdentity(snapshotFile);
  if (identity === undefined || stored.snapshot !== identity) return undefined;
  if (![...stored.path1, ...stored.path2].every(wellFormed)) return undefined;
  return { path1: { blocks: blocksOf(stored.path1), exact: stored.exact?.path1 === true }, path2: { blocks: blocksOf(stored.path2), exact: stored.exact?.path2 === true } };
}

const wellFormed = (block: unknown): boolean =>
  Array.isArray(block) &&
  typeof block[0] === 'string' &&
  typeof block[1] === 'number' &&
  (block[2] === null || typeof block[2] === 'string') &&
  Array.isArray(block[3]) &&
  (block[3] as unknown[]).every((folder) => typeof folder === 'string');

const blocksOf = (stored: StoredBlock[]): BlockDigests =>
  new Map(stored.map(([digest, files, parent, folders]): [string, BlockRecord] => [digest, { files, parent: parent ?? undefined, folders }]));

const storedBlocks = (blocks: BlockDigests): StoredBlock[] => [...blocks].map(([digest, { files, parent, folders }]) => [digest, files, parent ?? null, [...folders]]);

/**
 * Records that the snapshot file, as it is now, describes listings with these blocks; `exact` for
 * a side whose files it holds exactly as listed.
 */
export async function writeListingDigests(file: string, snapshotFile: string, settings: string, digests: Record<Side, BlockDigests>, exact: Record<Side, boolean>): Promise<void> {
  const snapshot = await snapshotIdentity(snapshotFile);
  if (snapshot === undefined) return;
  const stored: StoredDigests = { format: FORMAT, version: VERSION, snapshot, settings, exact, path1: storedBlocks(digests.path1), path2: storedBlocks(digests.path2) };
  const temporary = `${file}.tmp-${process.pid}`;
  await writeFile(temporary, JSON.stringify(stored), { mode: 0o600 });
  await rename(temporary, file);
}

export async function removeListingDigests(file: string): Promise<void> {
  await rm(file, { force: true });
}
