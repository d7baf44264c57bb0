#!/usr/bin/env -S node --max-semi-space-size=8
// Entry point. The young generation is capped at 8 MB a semi-space: at V8's default size on a
// roomy machine, garbage of the listings' parse waited there, and a 100k-file run peaked at
// 305 MB instead of 228 MB, no faster (bench/PROFILE.md). Node's flags cannot be set later.
//
// Node's compile cache must be on before the rest of the program is loaded: it halves
// the start-up of every `run`, `health` and `status` (a Docker HEALTHCHECK starts one a minute).
import { enableCompileCache } from 'node:module';

enableCompileCache?.();
await import('./main.ts');
