/**
 * The job side (`lockstep job run`) refuses a key that is not a run key before it touches the
 * remote: the key names paths under the remote's prefix, so `../..` would write outside it. An
 * image whose stage code differs from the spec's fails with that error even though the deps'
 * checkout had started beside the pipeline's load, and leaves no scratch workspace behind,
 * unless it runs as a Vertex AI replica (whose container disk goes with it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runJob } from '../../lib/compute/worker.ts';
import { memoryOutput } from '../../lib/output.ts';
import { jobPaths } from '../../lib/compute/spec.ts';
import { writeJobImage, writeJobSpec } from '../support/job-image.ts';

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

  /** A remote holding a spec whose stage code cannot match the image's; the dep's object is absent. */
  function mismatchedJob(): { remote: string; key: string; image: string } {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-worker-'));
    const image = writeJobImage(
      dir,
      "export function pipeline() { return [{ name: 's', deps: ['data/in'], outs: ['out/s'], code: ['stages/s.mjs'], params: [], run() {} }]; }\n",
    );
    const remote = path.join(dir, 'store');
    const key = 'c'.repeat(64);
    const spec = {
      stage: 's',
      key,
      code: 'd'.repeat(64),
      deps: [{ path: 'data/in', hash: 'e'.repeat(64), size: 3, nfiles: 1 }],
      params: {},
      inputs: {},
      shards: 1,
    };
    writeJobSpec(remote, key, spec);
    return { remote, key, image };
  }

  /** Runs the job with TMPDIR at `tmp` (restored after) and returns the error it failed with. */
  async function failedRun(
    tmp: string,
    remote: string,
    key: string,
    image: string,
    env: Record<string, string>,
  ): Promise<Error> {
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      await runJob({
        remote,
        key,
        out: memoryOutput(),
        imageRoot: image,
        defaultPipeline: path.join(image, 'pipeline.mjs'),
        env,
      });
    } catch (err) {
      return err as Error;
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    throw new Error('the job ran although its code differs');
  }

  it.each([
    ['run anywhere, it removes its scratch workspace', undefined, 0],
    ['as a Vertex AI replica, it leaves it to the container', 'job-1', 1],
  ])('a code mismatch is the error reported; %s', async (_what, jobId, left) => {
    const { remote, key, image } = mismatchedJob();
    const tmp = path.join(dir!, 'tmp');
    fs.mkdirSync(tmp);
    expect(
      (await failedRun(tmp, remote, key, image, jobId ? { CLOUD_ML_JOB_ID: jobId } : {})).message,
    ).toMatch(/^image: code of stage s differs from the repository's "[0-9a-f]{12} != dddddddddddd"/);
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith('lockstep-job-'))).toHaveLength(left);
    expect(fs.readFileSync(path.join(remote, jobPaths.error(key, 'workerpool0-0')), 'utf8')).toMatch(
      /^image: code of stage s differs/,
    );
  });

  it('with CLOUD_ML_JOB_ID set where the disk stays, the workspaces of jobs that are gone are removed', async () => {
    const { remote, key, image } = mismatchedJob();
    const tmp = path.join(dir!, 'tmp');
    // Left by an earlier job whose process exited, and one of a job still running.
    const gonePid = spawnSync(process.execPath, ['-e', '']).pid!;
    const gone = path.join(tmp, `lockstep-job-${gonePid}-abc123`);
    const running = path.join(tmp, `lockstep-job-${process.pid}-def456`);
    for (const d of [gone, running]) {
      fs.mkdirSync(path.join(d, 'data'), { recursive: true });
      fs.writeFileSync(path.join(d, 'data', 'in'), 'big');
    }
    expect((await failedRun(tmp, remote, key, image, { CLOUD_ML_JOB_ID: 'job-1' })).message).toMatch(
      /^image: code of stage s differs/,
    );
    const left = fs.readdirSync(tmp).filter((n) => n.startsWith('lockstep-job-'));
    expect(left).not.toContain(path.basename(gone));
    expect(left).toContain(path.basename(running));
    // The running one and this job's own.
    expect(left).toHaveLength(2);
  });
});
