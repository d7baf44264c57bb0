/**
 * README and docker-compose.yml as a new user follows them: one way to start compose (the one that
 * rebuilds after a `git pull`), who must own rclone.conf, and the way back from a stop.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
const compose = await readFile(join(ROOT, 'docker-compose.yml'), 'utf8');

describe('README and the compose file agree', () => {
  it('every "compose up" rebuilds the image (--build), so a git pull is never left running the old one', () => {
    // Commands as typed: lines of a code block or of the compose file's header.
    const command = /^[ #]*(?:\d\.\s+)?docker[ -]compose up.*$/gm;
    const ups = [...readme.matchAll(command), ...compose.matchAll(command)].map((m) => m[0]);
    expect(ups.length).toBeGreaterThanOrEqual(2);
    for (const up of ups) expect(up).toMatch(/up -d --build/);
  });

  it('the quick start says who must own rclone.conf', () => {
    const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## Kubernetes'));
    expect(quickStart).toMatch(/rclone\.conf` must belong to the user the container\s+runs as/);
    expect(quickStart).toContain('chown 1000:1000 state/rclone.conf');
  });

  it('"When a run stops" stands next to Exit codes and names both ways out of a safety stop', () => {
    const stops = readme.indexOf('## When a run stops');
    const exitCodes = readme.indexOf('## Exit codes');
    expect(stops).toBeGreaterThan(0);
    expect(Math.abs(stops - exitCodes)).toBeLessThan(3000);
    const section = readme.slice(stops, readme.indexOf('\n## ', stops + 1));
    for (const part of ['--dry-run', 'SYNC_FORCE=true', 'SYNC_RESYNC=true', 'deletes nothing', 'PUID']) expect(section).toContain(part);
  });

  it('the Kubernetes section says to edit SYNC_PATH2 and that the kustomization applies no Secret', () => {
    const kubernetes = readme.slice(readme.indexOf('## Kubernetes'), readme.indexOf('## Monitoring'));
    expect(kubernetes).toContain('SYNC_PATH2 is a placeholder');
    expect(kubernetes).toContain('no Secret');
  });
});
