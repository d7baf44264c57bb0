/**
 * Every setting's variable, written out by hand. The tests of `SETTINGS`, `--help`, `loadConfig`
 * and the README's table compare against this list, so a setting added to one of them without the
 * others (or without this list) fails a test instead of going unnoticed.
 */
export const EVERY_SETTING = [
  'SYNC_PATH1',
  'SYNC_PATH2',
  'SYNC_STATE_DIR',
  'SYNC_RESYNC',
  'SYNC_DRY_RUN',
  'SYNC_MAX_DELETE',
  'SYNC_FORCE',
  'SYNC_CHECK_ACCESS',
  'SYNC_CHECK_FILENAME',
  'SYNC_FILTERS_FILE',
  'SYNC_COMPARE',
  'SYNC_CONFLICT_RESOLVE',
  'SYNC_RCLONE_ARGS',
  'SYNC_STALL_TIMEOUT',
  'SYNC_RCLONE_BINARY',
  'SYNC_TRASH_DAYS',
  'SYNC_TRASH_PATH1',
  'SYNC_TRASH_PATH2',
  'SYNC_TRACK_RENAMES',
  'SYNC_EMPTY_DIRS',
  'SYNC_LOCAL_LISTING',
  'LOG_LEVEL',
  'LOG_FORMAT',
  'SYNC_SCHEDULE',
  'SYNC_RUN_ON_START',
  'SYNC_WATCH',
  'SYNC_WATCH_DELAY',
  'SYNC_HEALTH_MAX_AGE',
  'SYNC_HTTP_PORT',
  'SYNC_PING_URL',
  'SYNC_NOTIFY_URL',
] as const;
