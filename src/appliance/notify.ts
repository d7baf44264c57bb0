/**
 * A JSON webhook (SYNC_NOTIFY_URL) when a run needs attention: it failed, a safety gate stopped
 * it, or it produced conflict copies. Delivered like the pings (timeout, retries) and, like them,
 * never able to fail a run.
 */
import type { Logger } from '../log.ts';
import type { PlanCounts } from '../sync/types.ts';
import type { RunRecord } from '../state/history.ts';
import { deliver, type DeliveryOptions } from './ping.ts';

export type NotifyEvent = 'failure' | 'safety-stop' | 'conflicts';

export interface Notification {
  readonly event: NotifyEvent;
  readonly pair: string;
  readonly outcome: string;
  readonly exitCode: number;
  readonly counts: PlanCounts | null;
  readonly message: string;
  readonly startedAt: string;
  readonly endedAt: string;
}

/**
 * Which event a finished run is, if any. Success without conflicts is quiet, and so is a run that
 * found the lock held (it did nothing; the run holding the lock reports).
 */
export function notificationFor(report: RunRecord): Notification | undefined {
  let event: NotifyEvent;
  let message: string;
  switch (report.outcome) {
    case 'locked':
      return undefined;
    case 'success': {
      const conflicts = report.counts?.conflicts ?? 0;
      if (conflicts === 0) return undefined;
      event = 'conflicts';
      message = `${conflicts} file${conflicts === 1 ? '' : 's'} changed on both sides${report.dryRun ? ' (dry run: nothing was changed)' : '; both versions were kept as conflict copies'}`;
      break;
    }
    case 'safety-stop':
      event = 'safety-stop';
      message = report.message ?? 'a safety gate stopped the run';
      break;
    default:
      event = 'failure';
      message = report.message ?? `run ${report.outcome}`;
  }
  return {
    event,
    pair: report.pair,
    outcome: report.outcome,
    exitCode: report.exitCode,
    counts: report.counts ?? null,
    message,
    startedAt: report.startedAt,
    endedAt: report.endedAt,
  };
}

/** Posts the notification for this run, if it calls for one. Never throws; true when nothing was due or it was delivered. */
export async function notifyRun(url: string, report: RunRecord, logger: Logger, options: DeliveryOptions = {}): Promise<boolean> {
  const notification = notificationFor(report);
  if (!notification) return true;
  return deliver(`${notification.event} notification`, url, { method: 'POST', body: JSON.stringify(notification), contentType: 'application/json' }, logger, options);
}
