import type { Logger } from '../log.ts';
/** Placeholder until the appliance lands: see the appliance issue. */
export async function prepareRcloneConfig(_env: NodeJS.ProcessEnv, _stateDir: string, _logger: Logger): Promise<void> {}
