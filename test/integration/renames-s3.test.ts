/**
 * Renames and folders against S3 (s3rver): a folder holding 60% of the files renamed on path1 is
 * moved on S3 (server-side copies, no upload) with the default max-delete; an empty folder on path1
 * has nothing to become on S3 (no directory markers): no error, and nothing to do run after run.
 */
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionsOf, copiesOf, deletesOf, summaryOf, type LogLine } from '../helpers/logs.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { readTree, writeTree } from '../helpers/trees.ts';
import { backendDetail, backendRunEnv, currentBackend, useBackend } from '../helpers/backends.ts';

const { sandbox: sb, ok } = useSandbox('rs-renames-s3-', { runEnv: backendRunEnv, failureDetail: backendDetail });
const folderLines = (logs: readonly LogLine[]) => logs.filter((l) => typeof l.folder === 'string');

describe('renames and folders (local↔S3)', () => {
  useBackend('s3', () => sb.path2, 'renamess3');

  it('a folder holding 60% of the files renamed on path1 is moved on S3: no copies, no deletions, exit 0', { timeout: 180_000 }, async () => {
    const tree: Record<string, string> = {};
    for (let i = 0; i < 6; i++) tree[`photos/p${i}.jpg`] = `photo ${i}`;
    for (let i = 0; i < 4; i++) tree[`docs/d${i}.txt`] = `doc ${i}`;
    await writeTree(sb.path1, tree);
    await ok();
    await rename(join(sb.path1, 'photos'), join(sb.path1, 'pictures'));
    const result = await ok();
    expect(result.logs.filter((l) => l.action === 'move')).toHaveLength(6);
    expect(copiesOf(result.logs)).toEqual([]);
    expect(deletesOf(result.logs)).toEqual([]);
    expect(summaryOf(result.logs)).toMatchObject({ movesOnPath2: 6, deletesOnPath2: 0, bytes: 0 });
    expect(await currentBackend().side2.readTree()).toEqual(await readTree(sb.path1));
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });

  it('an empty folder on path1 has nothing to become on S3: no error, nothing to do, run after run', { timeout: 180_000 }, async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await mkdir(join(sb.path1, 'empty/deeper'), { recursive: true });
    const first = await ok();
    expect(folderLines(first.logs)).toEqual([]);
    const second = await ok();
    expect(folderLines(second.logs)).toEqual([]);
    expect(actionsOf(second.logs)).toEqual([]);
    expect(await currentBackend().side2.readTree()).toEqual({ 'a.txt': 'a' });
  });
});
