/**
 * The featurize thread pool: the same features whatever the thread count or split, one set of
 * workers for many runs (batch prediction's chunks), concurrent runs, bad files as results, and
 * abort / close failing only the runs in flight.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paramsSchema } from '../../lib/params-schema.ts';
import { featurizeConfig } from '../../stages/featurize/index.ts';
import { FeaturePool, featurizeFiles, type FileResult } from '../../stages/featurize/pool.ts';
import { makeTinyCorpus } from '../support/corpus.ts';

const config = featurizeConfig(paramsSchema.parse({ featurize: { max_seconds: 1.5 } }).featurize);
let tmp: string;
let files: string[];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-pool-'));
  files = await makeTinyCorpus(path.join(tmp, 'c'), { speakers: 2, words: 1 });
  fs.writeFileSync(path.join(tmp, 'bad.wav'), 'not audio');
  files.push(path.join(tmp, 'bad.wav'));
}, 60_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const summaries = (rs: FileResult[]) => rs.map((r) => ('error' in r ? r.error : Array.from(r.summary)));

describe('FeaturePool', () => {
  it('gives identical results on 1, 2 or 3 threads, with or without this thread, bad files as errors', async () => {
    const one = await featurizeFiles(config, files, { workers: 1 });
    expect('error' in one[one.length - 1]).toBe(true);
    expect(one.slice(0, -1).every((r) => !('error' in r))).toBe(true);
    for (const opts of [{ workers: 2 }, { workers: 3 }, { workers: 2, useMainThread: false }]) {
      expect(summaries(await featurizeFiles(config, files, opts)), JSON.stringify(opts)).toEqual(
        summaries(one),
      );
    }
  });

  it('keeps its workers across runs, and serves concurrent runs', async () => {
    const pool = new FeaturePool(config, { workers: 2 });
    try {
      const whole = await pool.run(files);
      const a = await pool.run(files.slice(0, 5));
      const b = await pool.run(files.slice(5));
      expect(summaries([...a, ...b])).toEqual(summaries(whole));
      const [c, d] = await Promise.all([pool.run(files.slice(0, 7)), pool.run(files.slice(7))]);
      expect(summaries([...c, ...d])).toEqual(summaries(whole));
      expect(pool.started).toBe(1); // two threads: this one and one worker, started once
    } finally {
      await pool.close();
    }
  });

  it('an aborted run rejects and the pool stays usable; close fails the runs in flight', async () => {
    const pool = new FeaturePool(config, { workers: 2 });
    const ac = new AbortController();
    const aborted = pool.run(files, { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    expect(await pool.run(files.slice(0, 3))).toHaveLength(3);
    const inFlight = expect(pool.run(files)).rejects.toThrow(/closed/);
    await pool.close();
    await inFlight;
    await expect(pool.run(files.slice(0, 1))).rejects.toThrow(/closed/);
  });
});
