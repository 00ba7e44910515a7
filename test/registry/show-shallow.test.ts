/**
 * `registry show --history` in a shallow clone: the walk stops at the shallow boundary, so the
 * answer says it may miss earlier deploys instead of claiming "none before".
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { showRegistry } from '../../lib/registry/registry.ts';
import { buildModelHistory, type ModelHistory } from '../support/model-history.ts';

let base: string;
let dir: string;
let h: ModelHistory;

beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-show-shallow-'));
  const origin = path.join(base, 'origin');
  fs.mkdirSync(origin);
  h = buildModelHistory(origin, { commits: 8, stagingEvery: 2, prodEvery: 2 });
  dir = path.join(base, 'clone');
  execFileSync('git', ['clone', '-q', '--depth', '2', '--no-single-branch', `file://${origin}`, dir]);
});
afterEach(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

describe('registry show --history in a shallow clone', () => {
  it('says the history is cut at the shallow boundary', async () => {
    const e = await showRegistry(dir, 'origin/dev', { history: true });
    expect(e.shallow).toBe(true);
    const o = memoryOutput();
    expect(await main(['-C', dir, 'registry', 'show', 'origin/dev', '--history'], o)).toBe(0);
    expect(o.stdout.join('\n')).toMatch(/^environments: .*shallow clone.*git fetch --unshallow/m);
    expect(o.stdout.join('\n')).not.toMatch(/none, now or before/);
  });

  it('says nothing of it in a full clone', async () => {
    const e = await showRegistry(path.join(base, 'origin'), h.dev[7]!, { history: true });
    expect(e.shallow).toBe(false);
  });
});
