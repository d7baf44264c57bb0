import type { Config } from '../config.ts';
export async function checkHealth(_config: Config, _out: NodeJS.WritableStream): Promise<number> {
  return 1;
}
