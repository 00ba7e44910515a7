#!/usr/bin/env node
// The git merge driver for artifacts.lock.yaml (`merge.lockstep.driver`): git runs it with
// %O %A %B %P. It loads only the lockfile merge, not the CLI, because git starts it per merge.
import { register } from 'tsx/esm/api';

register();
const { runMergeDriver } = await import('../lib/lockfile-driver.ts');
process.exitCode = await runMergeDriver(process.argv.slice(2));
