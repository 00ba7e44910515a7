// `node --import ./test/support/deny-imports.mjs ...`: makes importing any package whose name
// matches the DENY_IMPORTS regular expression fail, in the main thread of that process. Tests
// use it to prove that a command loads no ML library (or no TypeScript loader).
import { register } from 'node:module';

register('./deny-imports-hooks.mjs', import.meta.url, { data: { pattern: process.env.DENY_IMPORTS ?? '' } });
