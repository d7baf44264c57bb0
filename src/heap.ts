/**
 * How far V8 lets the heap grow past what its last full collection kept. By default it picks the
 * factor itself, up to ~4× for a heap that allocates fast: a run over a large tree (a million files
 * a side) then peaks mostly on garbage. The first run with nothing to do after a change at 1M (it
 * reads both listings whole, against the snapshot) kept ~180 MB after each full collection but
 * peaked at 625–658 MB; with the factor fixed at 1.5, 453–501 MB (the process tree, rclone's
 * listers included, ~505 MB), for up to 5% more time: 11.8–12.0 s against 11.0–11.4 s in one A/B,
 * no difference in another (bench/PROFILE.md, twelfth round). At 100k files a fixed factor only doubled the full collections (2 → 4, ~0.04 s
 * of CPU in a change batch) for no gain, so it is set only as a large snapshot is opened to be read
 * whole (not by a run with nothing to do, which reads no snapshot), or as a resync (a first run:
 * no snapshot) lists a large tree, which it holds whole with its plan. It is a process-wide V8
 * flag: it stays set (in the daemon, for every pair after).
 */
import { setFlagsFromString } from 'node:v8';

/** Files (both sides) from which a run that holds them whole fixes the factor. */
const LARGE_TREE_FILES = 350_000;
/** ~47 bytes a file in the snapshot (both sides): 16 MiB is ~350,000 files. */
const LARGE_SNAPSHOT_BYTES = 16 << 20;
const GROWING_PERCENT = 50;

let tightened = false;

function tighten(): void {
  if (tightened) return;
  tightened = true;
  setFlagsFromString(`--heap-growing-percent=${GROWING_PERCENT}`);
}

/** Before a run reads a snapshot of `bytes` whole: a large one fixes the heap's growth factor. */
export function heapGrowthFor(bytes: number): void {
  if (bytes >= LARGE_SNAPSHOT_BYTES) tighten();
}

/**
 * As a run with no snapshot to read (a first run, a resync) lists: it holds both listings whole,
 * and its plan and new snapshot besides, so a large tree fixes the factor as well.
 */
export function heapGrowthForListed(files: number): void {
  if (files >= LARGE_TREE_FILES) tighten();
}
