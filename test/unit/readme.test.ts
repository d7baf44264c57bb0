/**
 * The README against the code: the settings table names every setting of `SETTINGS` with its
 * flag, and both are checked against the hand-written list of every setting (helpers/settings.ts),
 * so a setting added to (or dropped from) one place without the others fails a test.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config.ts';
import { EVERY_SETTING } from '../helpers/settings.ts';

const readme = await readFile(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

/** The README's settings rows: `| \`SYNC_X\` | \`--flag\` | default | meaning |`. */
const readmeRows = [...readme.matchAll(/^\| `([A-Z0-9_]+)` \| `--([a-z0-9-]+)` \|/gm)].map(([, env, flag]) => ({ env: env!, flag: flag! }));

describe('README', () => {
  it('SETTINGS holds exactly the hand-written list of every setting, in order', () => {
    expect(SETTINGS.map((s) => s.env)).toEqual(EVERY_SETTING);
  });

  it('the settings table names exactly those settings, in the same order', () => {
    expect(readmeRows.map((row) => row.env)).toEqual(EVERY_SETTING);
  });

  it.each(SETTINGS.map((s) => [s.env, s.flag] as const))('documents %s with its flag --%s', (env, flag) => {
    expect(readmeRows).toContainEqual({ env, flag });
  });

  it('documents every exit code', () => {
    for (const code of [0, 1, 2, 3, 4]) expect(readme).toMatch(new RegExp(`^\\| ${code} \\|`, 'm'));
  });

  it('gives the test command that .ci/run runs', async () => {
    const ci = await readFile(join(import.meta.dirname, '..', '..', '.ci', 'run'), 'utf8');
    expect(readme).toContain('npm test');
    expect(ci).toMatch(/^npm test\b/m);
  });
});
