import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { main } from '../../lib/cli/main.ts';
import { RefusedError } from '../../lib/errors.ts';
import { memoryOutput } from '../../lib/output.ts';
import { planRollback, rollbackLocal } from '../../lib/promotion/rollback.ts';
import { GOOD, makeRegistryRepo, type RegistryRepo } from './fixture.ts';

let r: RegistryRepo;
beforeEach(async () => {
  r = await makeRegistryRepo();
});
afterEach(async () => {
  await r.cleanup();
});

async function cli(...args: string[]): Promise<number> {
  return main(['-C', r.dir, ...args], memoryOutput());
}

describe('rollback --local', () => {
  it.each([false, true])(
    'rollback --local refuses, and leaves nothing behind, when the branch moved after the plan (branch checked out: %s)',
    async (checkedOut) => {
      await r.commitModel({ content: 'v1', metrics: GOOD });
      await cli('promote', 'staging', '--local');
      await r.commitModel({ content: 'v2', metrics: { accuracy: 0.81, f1_macro: 0.81, mcc: 0.76 } });
      await cli('promote', 'staging', '--local');
      const plan = await planRollback(r.repo, 'staging');
      // Someone commits to the environment branch meanwhile.
      await r.git.checkout('staging');
      await writeFile(path.join(r.dir, 'NOTES.md'), 'a note\n');
      await r.git.add('NOTES.md');
      await r.git.commit('a note on staging');
      const moved = (await r.git.revparse(['staging'])).trim();
      if (!checkedOut) await r.git.checkout('dev');
      let caught: unknown;
      try {
        await rollbackLocal(r.repo, plan);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RefusedError);
      expect((caught as Error).message).toBe(
        `staging: branch "staging" moved to ${moved.slice(0, 8)} since the rollback was planned on ${plan.head.slice(0, 8)}. Run the rollback again.`,
      );
      expect((await r.git.revparse(['staging'])).trim()).toBe(moved);
      expect((await r.git.raw(['branch', '--list', 'rollback/*'])).trim()).toBe('');
    },
  );
});
