#!/usr/bin/env node
// Entry point. Node's compile cache must be on before the rest of the program is loaded: it halves
// the start-up of every `run`, `health` and `status` (a Docker HEALTHCHECK starts one a minute).
import { enableCompileCache } from 'node:module';

enableCompileCache?.();
await import('./main.ts');
