/**
 * The job side (`lockstep job run`) refuses a key that is not a run key before it touches the
 * remote: the key names paths under the remote's prefix, so `../..` would write outside it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runJob } from '../../lib/compute/worker.ts';
import { memoryOutput } from '../../lib/output.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('runJob', () => {
  it.each(['../../escape', 'ABC', 'a'.repeat(63), `${'a'.repeat(64)}/../x`])(
    'runJob refuses the key %s and writes nothing',
    async (key) => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-worker-'));
      const remote = path.join(dir, 'store');
      await expect(
        runJob({
          remote,
          key,
          out: memoryOutput(),
          imageRoot: dir,
          defaultPipeline: path.join(dir, 'pipeline.mjs'),
        }),
      ).rejects.toThrow(
        /^--key: not a run key ".*"\. Pass the 64-hex run key lockstep repro submitted the job with\.$/,
      );
      expect(fs.readdirSync(dir)).toEqual([]);
    },
  );
});
