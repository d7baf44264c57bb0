/**
 * rclone's network defaults (--contimeout 1m, --timeout 5m, --low-level-retries 10, --retries 3)
 * suit someone watching a terminal. An unattended appliance runs again on its schedule anyway, so
 * a dead remote should fail a run within minutes rather than retry for a quarter of an hour while
 * holding the pair's lock. The stall watchdog (SYNC_STALL_TIMEOUT) is the backstop for hangs that
 * no rclone timeout catches.
 */
export const APPLIANCE_DEFAULTS: readonly (readonly [flag: string, value: string])[] = [
  ['--contimeout', '30s'],
  ['--timeout', '2m'],
  ['--low-level-retries', '5'],
  ['--retries', '2'],
];

/**
 * The defaults for one rclone call. A flag the user gives in SYNC_RCLONE_ARGS (`--timeout 10m` or
 * `--timeout=10m`) wins, for every call, not only transfers; one set as RCLONE_TIMEOUT in the
 * environment too (a flag on the command line would override it, so none is given).
 */
export function defaultArgs(userArgs: readonly string[], env: Readonly<Record<string, string | undefined>>): string[] {
  const args: string[] = [];
  for (const [flag, value] of APPLIANCE_DEFAULTS) {
    if (env[`RCLONE_${flag.slice(2).toUpperCase().replaceAll('-', '_')}`] !== undefined) continue;
    args.push(flag, userValue(userArgs, flag) ?? value);
  }
  return args;
}

function userValue(userArgs: readonly string[], flag: string): string | undefined {
  let value: string | undefined;
  userArgs.forEach((arg, i) => {
    if (arg === flag && i + 1 < userArgs.length) value = userArgs[i + 1];
    else if (arg.startsWith(`${flag}=`)) value = arg.slice(flag.length + 1);
  });
  return value;
}
