/**
 * The image built from our Dockerfile for a test run, and what to do when the build fails: the
 * base images (NODE_IMAGE, RCLONE_IMAGE) may come from the environment (local stand-ins, mirrors).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GenericContainer, type ContainerRuntimeClient } from 'testcontainers';
import { describeError, REPO_ROOT } from '../processes.ts';

/** Where test images are tagged; every run builds its own tag (see `prepareContainerSuite`). */
export const IMAGE_REPO = 'localhost/rclonesync-test';

/** Build arguments for the Dockerfile: the base images from the environment when set (local stand-ins, mirrors). */
export function buildArgs(): Record<string, string> {
  const args: Record<string, string> = {};
  for (const name of ['NODE_IMAGE', 'RCLONE_IMAGE']) {
    const value = process.env[name]?.trim();
    if (value) args[name] = value;
  }
  return args;
}

/**
 * Builds the image from the Dockerfile under a tag of its own for this run. The engine's layer
 * cache makes a rebuild of unchanged sources take seconds. A tag of its own, because testcontainers
 * ignores the build's error output and only checks that the tag exists afterwards: an old image
 * under a fixed tag would hide a broken build.
 */
export async function buildImage(client?: ContainerRuntimeClient): Promise<{ image: string; ms: number }> {
  const image = `${IMAGE_REPO}:run-${process.pid}-${Date.now().toString(36)}`;
  const started = Date.now();
  try {
    await GenericContainer.fromDockerfile(REPO_ROOT).withBuildArgs(buildArgs()).build(image, { deleteOnExit: false });
  } catch (error) {
    const missing = client ? await missingBaseImages(client) : [];
    throw new Error(buildFailureMessage(describeError(error), missing, buildArgs()));
  }
  return { image, ms: Date.now() - started };
}

/** The Dockerfile's base images (its ARG defaults, or the build args that replace them). */
export async function baseImages(args: Record<string, string> = buildArgs()): Promise<string[]> {
  const dockerfile = await readFile(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const images: string[] = [];
  for (const match of dockerfile.matchAll(/^ARG\s+(NODE_IMAGE|RCLONE_IMAGE)=(\S+)/gm)) images.push(args[match[1]!] ?? match[2]!);
  return images;
}

/** Base images the engine does not have: a build then needs a registry, often the real cause. */
async function missingBaseImages(client: ContainerRuntimeClient): Promise<string[]> {
  const missing: string[] = [];
  for (const name of await baseImages()) {
    const present = await client.container.dockerode
      .getImage(name)
      .inspect()
      .then(() => true, () => false);
    if (!present) missing.push(name);
  }
  return missing;
}

/** Why the build failed, and the one thing to do about it: a missing base image is named as such. */
export function buildFailureMessage(problem: string, missingBaseImages: readonly string[], args: Record<string, string>): string {
  if (missingBaseImages.length > 0) {
    return (
      `the image cannot be built: the base image${missingBaseImages.length === 1 ? '' : 's'} ${missingBaseImages.join(', ')} ` +
      `${missingBaseImages.length === 1 ? 'is' : 'are'} not in the container engine and could not be pulled (${problem}). ` +
      'Pull or load them, or set NODE_IMAGE / RCLONE_IMAGE to images the engine has (scripts/setup-env.sh --containers provides local stand-ins).'
    );
  }
  return (
    `building the image from ${join(REPO_ROOT, 'Dockerfile')} failed (${problem}); build args ${JSON.stringify(args)}. ` +
    'Run `docker build --build-arg NODE_IMAGE=$NODE_IMAGE --build-arg RCLONE_IMAGE=$RCLONE_IMAGE .` or set DEBUG=testcontainers:build to see why.'
  );
}

/** Removes a tag (the layers stay in the engine's cache for the next build). */
export async function removeImageTag(client: ContainerRuntimeClient, image: string): Promise<void> {
  await client.container.dockerode
    .getImage(image)
    .remove({ noprune: true })
    .catch(() => undefined);
}
