import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { recordCanaryResult } from '../../lib/canary/record.ts';
import type { ReconcileResult } from '../../lib/canary/reconcile.ts';
import { readDeployments } from '../../lib/promotion/records.ts';

let tmp: string;
let repo: Repo;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-record-'));
  repo = repoAt(tmp);
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const HASH = 'a'.repeat(64);
function result(action: ReconcileResult['action'], stepIndex: number, failed = false): ReconcileResult {
  return {
    action,
    changed: true,
    failed,
    reason: `${action} at step ${stepIndex + 1}`,
    plan: [],
    status: {
      candidateHash: HASH,
      stepIndex,
      phase: 'progressing',
      stepStartedAt: '2026-01-01T00:00:00.000Z',
      message: '',
    },
  };
}

describe('canary records', () => {
  it('canary records each step once, a hold once per step, and a failed canary with its reason', async () => {
    const ctx = { env: 'staging', commit: 'c'.repeat(40) };
    const passes: [ReconcileResult['action'], number, boolean][] = [
      ['start', 0, false],
      ['hold', 0, false],
      ['hold', 0, false], // the same hold again: not recorded
      ['advance', 1, false],
      ['hold', 1, false],
      ['none', 1, false], // nothing happened: not recorded
      ['rollback', 1, true],
    ];
    for (const [action, step, failed] of passes)
      await recordCanaryResult(repo, result(action, step, failed), ctx);
    const records = await readDeployments(repo, 'staging');
    expect(records.map((r) => [r.status, r.step])).toEqual([
      ['canary_started', 1],
      ['canary_hold', 1],
      ['canary_step', 2],
      ['canary_hold', 2],
      ['canary_rolled_back', 2],
    ]);
    expect(records.at(-1)).toMatchObject({ source: 'canary', model: HASH, detail: 'rollback at step 2' });
  });

  it('canary records the stable model pinned again mid-canary as restored, not failed', async () => {
    await recordCanaryResult(repo, result('rollback', 0, false), { env: 'dev', commit: 'c'.repeat(40) });
    expect((await readDeployments(repo, 'dev')).map((r) => r.status)).toEqual(['rolled_back']);
  });
});
