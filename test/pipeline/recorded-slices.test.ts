import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyLockfile, readLockfile } from '../../lib/lockfile.ts';
import { memoryOutput } from '../../lib/output.ts';
import { flattenMetrics, lockedMetrics } from '../../lib/pipeline/metrics.ts';
import { recordedEvalMetrics, slicesSource } from '../../lib/pipeline/recorded-slices.ts';
import { reproduce } from '../../lib/pipeline/run.ts';
import { artifactObjects, commitArtifact } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import type { GcsRemoteOptions } from '../../lib/store/gcs-remote.ts';
import { openRemote } from '../../lib/store/open-remote.ts';
import { decodeManifest } from '../../lib/store/manifest.ts';
import { packGroups } from '../../lib/store/packs.ts';
import { objectKey } from '../../lib/store/remote.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import type { Lockfile, StageDef } from '../../lib/types.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { evaluateEntry, flattenedEvaluateLockfile } from '../support/evaluate-lock.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

let t: TmpRepo | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const slice = (n: number, f1: number) => ({
  n,
  speakers: 1,
  min_size: 20,
  metrics: { f1_macro: f1, accuracy: f1 + 0.05 },
  intervals: { f1_macro: { lo: f1 - 0.1, hi: f1 + 0.1 } },
});

/** evaluate's metrics.json: headline, intervals, bootstrap and slices; `lr` moves the numbers. */
const metricsFile = (lr: number) => ({
  accuracy: 0.75 + lr,
  f1_macro: 0.7 + lr,
  intervals: { f1_macro: { lo: 0.6, hi: 0.8 } },
  bootstrap: { resamples: 400, confidence: 0.95, seed: 0 },
  slices: { speaker: { S03: slice(35, 0.5 + lr), S08: slice(35, 0.8) } },
});

/** A one-stage pipeline writing out/eval like the evaluate stage; `outOnly` as evaluate declares it. */
function pipeline(outOnly: boolean): StageDef[] {
  return [
    {
      name: 'evaluate',
      description: 'writes evaluate-shaped metrics',
      code: ['code/evaluate.txt'],
      deps: [],
      params: ['train.lr'],
      outs: ['out/eval'],
      metrics: ['out/eval/metrics.json'],
      ...(outOnly ? { outOnlyMetrics: ['slices'] } : {}),
      async run(ctx) {
        fs.mkdirSync(ctx.abs('out/eval'), { recursive: true });
        fs.appendFileSync(ctx.abs('runs.log'), 'evaluate\n');
        const lr = (ctx.params as { train: { lr: number } }).train.lr;
        fs.writeFileSync(ctx.abs('out/eval/metrics.json'), JSON.stringify(metricsFile(lr)));
        fs.writeFileSync(ctx.abs('out/eval/confusion.json'), '{}');
      },
    },
  ];
}

async function repro(lr: number, outOnly = true) {
  t!.write('params.yaml', `train:\n  lr: ${lr}\n`);
  const params = { train: { lr } } as never;
  const report = await reproduce(t!.repo, pipeline(outOnly), { params, out: memoryOutput() });
  expect(report.ok).toBe(true);
  return report;
}

const sliceKeys = (m: Record<string, number> | undefined) =>
  Object.keys(m ?? {}).filter((k) => k.startsWith('slices.'));

describe('recorded slices', () => {
  it('lockedMetrics drops the keys under an out-only top-level key and nothing else', () => {
    const flat = flattenMetrics(metricsFile(0));
    const locked = lockedMetrics(flat, ['slices'])!;
    expect(sliceKeys(locked)).toEqual([]);
    expect(locked).toEqual({
      accuracy: 0.75,
      f1_macro: 0.7,
      'intervals.f1_macro.lo': 0.6,
      'intervals.f1_macro.hi': 0.8,
      'bootstrap.resamples': 400,
      'bootstrap.confidence': 0.95,
      'bootstrap.seed': 0,
    });
    expect(lockedMetrics(flat, undefined)).toBe(flat);
    expect(lockedMetrics({ slicesx: 1, slices: 2 }, ['slices'])).toEqual({ slicesx: 1 });
  });

  it('the runner locks the headline metrics; the slices are read from the out by hash', async () => {
    t = await createTmpRepo({ 'code/evaluate.txt': 'v1\n' });
    await repro(0.01);
    const lf = readLockfile(t.repo);
    const entry = lf.stages.evaluate!;
    expect(sliceKeys(entry.metrics)).toEqual([]);
    expect(entry.metrics).toMatchObject({ accuracy: 0.76, f1_macro: 0.71, 'intervals.f1_macro.lo': 0.6 });
    expect(t.read('artifacts.lock.yaml')).not.toMatch(/slices/);
    expect(slicesSource(lf)).toEqual({ out: entry.outs[0]!.hash, file: 'out/eval/metrics.json' });

    // The workspace copy is not what is read: the object the lockfile pins is.
    fs.rmSync(path.join(t.root, 'out'), { recursive: true });
    const recorded = await recordedEvalMetrics(t.repo, lf);
    expect(recorded.missing).toBeUndefined();
    expect(recorded.metrics).toMatchObject({ accuracy: 0.76, f1_macro: 0.71 });
    expect(recorded.intervals.f1_macro).toEqual({ lo: 0.6, hi: 0.8 });
    expect(recorded.confidence).toBe(0.95);
    expect(recorded.slices).toEqual(metricsFile(0.01).slices);
  });

  it('slices missing from the cache are named, and a remote that has them serves them', async () => {
    t = await createTmpRepo({ 'code/evaluate.txt': 'v1\n' });
    await repro(0.01);
    const lf = readLockfile(t.repo);
    const out = lf.stages.evaluate!.outs[0]!;
    const remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-slices-remote-'));
    dirs.push(remoteDir);
    const remote = await openRemote(remoteDir);
    const oids = await artifactObjects(t.repo, out);
    await pushObjects(t.repo, remote, oids);
    const cache = new Cache(t.repo);
    for (const oid of oids) fs.rmSync(cache.objectPath(oid));

    const missing = await recordedEvalMetrics(t.repo, lf, { label: 'HEAD' });
    expect(missing.slices).toEqual({});
    expect(missing.metrics.f1_macro).toBe(0.71);
    expect(missing.missing).toMatch(/^out\/eval@HEAD: object is missing from the cache .*lockstep pull/);

    // A remote without them: said as such, not as the file system's ENOENT.
    const emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-slices-empty-'));
    dirs.push(emptyDir);
    const empty = await recordedEvalMetrics(t.repo, lf, {
      remote: await openRemote(emptyDir),
      label: 'HEAD',
    });
    expect(empty.missing).toMatch(
      /^out\/eval@HEAD: object is in neither the cache nor the remote file:\S+ "[0-9a-f]{64}"\. Push it .*lockstep push/,
    );

    const fetched = await recordedEvalMetrics(t.repo, lf, { remote, label: 'HEAD' });
    expect(fetched.missing).toBeUndefined();
    expect(fetched.slices).toEqual(metricsFile(0.01).slices);
    // Only what the slices need came over: the manifest and metrics.json, with the other files
    // of metrics.json's pack (lib/store/packs.ts: one download), nothing outside it.
    const entries = decodeManifest(fs.readFileSync(cache.objectPath(oids[0]!)), oids[0]!).entries;
    const metricsOid = entries.find((e) => e.path === 'metrics.json')!.sha256;
    const pack = packGroups(entries).find((g) => g.members.some((m) => m.oid === metricsOid));
    const expected = new Set([oids[0]!, metricsOid, ...(pack?.members.map((m) => m.oid) ?? [])]);
    expect(oids.filter((o) => cache.hasSync(o)).sort()).toEqual([...expected].sort());
    expect(fs.existsSync(path.join(remoteDir, objectKey(oids[0]!)))).toBe(true);
  });

  it('a lockfile with flattened slices (written before they left it) is read as it is', async () => {
    t = await createTmpRepo();
    // The out is in no cache: the lockfile's own keys are the slices.
    const out = { path: 'out/eval', hash: 'b'.repeat(64), size: 10, nfiles: 2, dir: true };
    t.write('artifacts.lock.yaml', flattenedEvaluateLockfile(metricsFile(0.02), [out]));
    const old = readLockfile(t.repo);
    expect(sliceKeys(old.stages.evaluate!.metrics).length).toBeGreaterThan(10);
    expect(slicesSource(old)).toBeUndefined();
    const recorded = await recordedEvalMetrics(t.repo, old);
    expect(recorded.missing).toBeUndefined();
    expect(recorded.slices).toEqual(metricsFile(0.02).slices);
  });

  it('a run-cache entry from before (slices in its metrics) restores without them into the lockfile', async () => {
    t = await createTmpRepo({ 'code/evaluate.txt': 'v1\n' });
    const runs = () => t!.read('runs.log').split('\n').filter(Boolean).length;
    await repro(0.01, false); // as an earlier version ran it: slices locked, and in the run-cache
    expect(sliceKeys(readLockfile(t.repo).stages.evaluate!.metrics).length).toBeGreaterThan(10);
    await repro(0.02);
    expect(sliceKeys(readLockfile(t.repo).stages.evaluate!.metrics)).toEqual([]);
    const back = await repro(0.01);
    expect(back.stages[0]!.status).toBe('restored');
    expect(runs()).toBe(2);
    const entry = readLockfile(t.repo).stages.evaluate!;
    expect(sliceKeys(entry.metrics)).toEqual([]);
    expect(entry.metrics!.f1_macro).toBe(0.71);
    expect((await recordedEvalMetrics(t.repo, readLockfile(t.repo))).slices).toEqual(
      metricsFile(0.01).slices,
    );
  });
  /** The lockfile after the evaluate out is re-recorded with out/eval/metrics.json replaced by `write`. */
  async function damagedOut(write: (file: string) => void): Promise<Lockfile> {
    const lf = readLockfile(t!.repo);
    const file = path.join(t!.root, 'out/eval/metrics.json');
    fs.rmSync(file, { recursive: true, force: true });
    write(file);
    lf.stages.evaluate!.outs = [await commitArtifact(t!.repo, 'out/eval')];
    return lf;
  }

  it.each([
    ['not JSON', (f: string) => fs.writeFileSync(f, '{"slices": {'), /not valid JSON/],
    ['without slices', (f: string) => fs.writeFileSync(f, '{"f1_macro": 0.7}'), /has no "slices" key/],
    ['JSON null', (f: string) => fs.writeFileSync(f, 'null'), /has no "slices" key/],
    [
      'slices of another shape',
      (f: string) => fs.writeFileSync(f, '{"slices": {"speaker": {"S03": {"n": "many"}}}}'),
      /slices/,
    ],
    [
      'a directory',
      (f: string) => {
        fs.mkdirSync(f);
        fs.writeFileSync(path.join(f, 'x.json'), '{}');
      },
      /is a directory in the evaluate out/,
    ],
    ['gone from the out', () => undefined, /is not in the evaluate out/],
  ])(
    'a metrics.json %s gives missing naming file@rev and the fix, not a throw',
    async (_, write, problem) => {
      t = await createTmpRepo({ 'code/evaluate.txt': 'v1\n' });
      await repro(0.01);
      const recorded = await recordedEvalMetrics(t.repo, await damagedOut(write), { label: 'HEAD' });
      expect(recorded.slices).toEqual({});
      expect(recorded.metrics.f1_macro).toBe(0.71);
      expect(recorded.missing).toMatch(/^out\/eval\/metrics\.json@HEAD: /);
      expect(recorded.missing).toMatch(problem);
      expect(recorded.missing).toMatch(/lockstep repro evaluate/);
      expect(recorded.missing).not.toContain('\n');
    },
  );

  it('an out recorded at the metrics file path as a directory gives missing', async () => {
    t = await createTmpRepo();
    const lf = emptyLockfile();
    const out = { path: 'out/eval/metrics.json', hash: 'b'.repeat(64), size: 10, nfiles: 1, dir: true };
    lf.stages.evaluate = evaluateEntry([out], { f1_macro: 0.7 });
    const recorded = await recordedEvalMetrics(t.repo, lf, { label: 'dev@1a2b3c4d' });
    expect(recorded.missing).toMatch(/^out\/eval\/metrics\.json@dev@1a2b3c4d: is a directory in the out\. /);
  });

  it('a corrupt cache object with no remote is quarantined and named, with the pull fix', async () => {
    t = await createTmpRepo({ 'code/evaluate.txt': 'v1\n' });
    await repro(0.01);
    const lf = readLockfile(t.repo);
    const file = (await artifactObjects(t.repo, lf.stages.evaluate!.outs[0]!)).slice(1);
    const cache = new Cache(t.repo);
    for (const oid of file) {
      const p = cache.objectPath(oid);
      fs.chmodSync(p, 0o644);
      fs.writeFileSync(p, 'changed bytes');
    }
    const recorded = await recordedEvalMetrics(t.repo, lf, { label: 'HEAD' });
    expect(recorded.missing).toMatch(
      /^out\/eval\/metrics\.json@HEAD: cache object is corrupt \(quarantined\) .*lockstep pull/,
    );
    expect(recorded.slices).toEqual({});
  });

  it('an unreachable remote gives missing, not a throw', async () => {
    t = await createTmpRepo({ 'code/evaluate.txt': 'v1\n' });
    await repro(0.01);
    const lf = readLockfile(t.repo);
    const cache = new Cache(t.repo);
    for (const oid of await artifactObjects(t.repo, lf.stages.evaluate!.outs[0]!))
      fs.rmSync(cache.objectPath(oid));
    const fake = await FakeGcs.start();
    const gcs: GcsRemoteOptions = {
      apiEndpoint: fake.url,
      projectId: 'p',
      maxRetryDelay: 0.02,
      stallTimeout: 0.5,
    };
    const remote = await openRemote('gs://bucket-a/store', gcs);
    await fake.close();
    const recorded = await recordedEvalMetrics(t.repo, lf, { remote, label: 'HEAD' });
    expect(recorded.missing).toMatch(/^\S+: /);
    expect(recorded.missing).not.toContain('\n');
    expect(recorded.slices).toEqual({});
  });
});
