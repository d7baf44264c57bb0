/**
 * Exit codes are part of the public interface (README, Kubernetes podFailurePolicy):
 * every failure the engine raises maps to exactly one of them.
 */
export const ExitCode = {
  ok: 0,
  /** The run failed; a later run may succeed (remote unreachable, rclone error). */
  failed: 1,
  /** Configuration or usage error: a person must fix a setting. */
  usage: 2,
  /** A safety gate stopped the run: a person must look before anything changes. */
  safetyStop: 3,
  /** Another run holds the lock for this pair. */
  locked: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** How a run ends: the history, the logs, the metrics' `outcome` label and the webhooks say one of these. */
export const OUTCOMES = ['success', 'failed', 'safety-stop', 'locked', 'usage', 'cancelled'] as const;
export type Outcome = (typeof OUTCOMES)[number];
/** Every ending but success is an error the engine raises. */
export type FailureOutcome = Exclude<Outcome, 'success'>;

/** The one outcome -> exit code table: errors, the run history and tests all take the code from here. */
export const EXIT_CODE_OF = {
  success: ExitCode.ok,
  failed: ExitCode.failed,
  cancelled: ExitCode.failed,
  usage: ExitCode.usage,
  'safety-stop': ExitCode.safetyStop,
  locked: ExitCode.locked,
} as const satisfies Record<Outcome, ExitCode>;

export class SyncError extends Error {
  readonly exitCode: ExitCode;
  readonly outcome: FailureOutcome;
  constructor(message: string, outcome: FailureOutcome, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = EXIT_CODE_OF[outcome];
    this.outcome = outcome;
  }
}

/** A setting or flag has a value we cannot use. The message names it and says what it accepts. */
export class ConfigError extends SyncError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'usage', options);
    this.name = 'ConfigError';
  }
}

/** Something looks wrong enough that changing either side could lose data. */
export class SafetyStop extends SyncError {
  readonly gate: SafetyGate;
  constructor(gate: SafetyGate, message: string) {
    super(message, 'safety-stop');
    this.name = 'SafetyStop';
    this.gate = gate;
  }
}
export type SafetyGate = 'max-delete' | 'check-access' | 'side-missing' | 'side-empty' | 'filters-changed' | 'state-corrupt';

export class LockHeld extends SyncError {
  constructor(message: string) {
    super(message, 'locked');
    this.name = 'LockHeld';
  }
}

/** The run failed in a way a later run may fix: network, rclone, I/O. */
export class RunFailed extends SyncError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'failed', options);
    this.name = 'RunFailed';
  }
}

/** The run was stopped by a signal; snapshots were left as they were. */
export class RunCancelled extends SyncError {
  constructor(message = 'run cancelled by a signal') {
    super(message, 'cancelled');
    this.name = 'RunCancelled';
  }
}
