import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
export async function runDaemon(_config: Config, _logger: Logger): Promise<number> {
  return 2;
}
