/**
 * When the container tests cannot build the image, the reason they report names what is missing:
 * a base image the engine neither has nor can pull is said to be that, not "run docker build".
 */
import { describe, expect, it } from 'vitest';
import { baseImages, buildFailureMessage } from '../helpers/containers/image.ts';

describe('the container tests\' build failure message', () => {
  it('names the base images the engine lacks and how to provide them', () => {
    const message = buildFailureMessage('pull access denied for node', ['node:24-bookworm-slim'], {});
    expect(message).toBe(
      'the image cannot be built: the base image node:24-bookworm-slim is not in the container engine and could not be pulled (pull access denied for node). ' +
        'Pull or load them, or set NODE_IMAGE / RCLONE_IMAGE to images the engine has (scripts/setup-env.sh --containers provides local stand-ins).',
    );
    expect(message).not.toContain('docker build');
  });

  it('otherwise points at the build itself', () => {
    expect(buildFailureMessage('step 5 failed', [], { NODE_IMAGE: 'n' })).toMatch(/failed \(step 5 failed\); build args \{"NODE_IMAGE":"n"\}\. Run `docker build/);
  });

  it("reads the base images from the Dockerfile's ARGs, replaced by the build args", async () => {
    expect(await baseImages({})).toEqual([expect.stringMatching(/^node:24/), expect.stringMatching(/^rclone\/rclone:/)]);
    expect(await baseImages({ NODE_IMAGE: 'localhost/standin/node:24' })).toEqual(['localhost/standin/node:24', expect.stringMatching(/^rclone\/rclone:/)]);
  });
});
