/**
 * Runs once per test run, before the container test files: finds the container engine, builds the
 * image from the Dockerfile (the engine's layer cache makes an unchanged rebuild take seconds),
 * probes whether network aliases resolve, and hands the result to the test files (inject). It
 * never throws: without an engine the files skip (or fail under RCLONESYNC_REQUIRE_CONTAINERS=1),
 * and a failed build fails them, each with the reason.
 */
import type { TestProject } from 'vitest/node';
import { containersRequired, prepareContainerSuite, REQUIRE_ENV } from '../helpers/containers/suite.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const { suite, teardown } = await prepareContainerSuite();
  project.provide('rclonesyncContainers', suite);
  if (suite.status === 'ready') {
    console.log(
      `container tests: ${suite.engine} engine, image ${suite.image} built in ${((suite.buildMs ?? 0) / 1000).toFixed(1)}s, ` +
        `network aliases ${suite.aliasDns ? 'resolve by DNS' : 'do not resolve (fixed addresses + /etc/hosts instead)'}; setup ${((Date.now() - started) / 1000).toFixed(1)}s`,
    );
  } else if (suite.status === 'no-engine' && !containersRequired()) {
    console.warn(`container tests will be skipped: ${suite.reason} (set ${REQUIRE_ENV}=1 to fail instead)`);
  } else {
    console.error(`container tests will fail: ${suite.reason}`);
  }
  return teardown;
}
