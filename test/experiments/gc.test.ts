import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { parseLockfile } from '../../lib/lockfile.ts';
import { hashArtifact, lockfileArtifacts, artifactObjects } from '../../lib/store/artifacts.ts';
import { collectGarbage } from '../../lib/store/gc.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import { openRemote } from '../../lib/store/open-remote.ts';
import { Cache } from '../../lib/store/cache.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { cliIn, createExperimentRepo, PIPE, showAt as showAtIn } from './helpers.ts';

const PARAMS = [
  '# tuned by hand',
  'data:',
  '  seed: 1',
  'train:',
  '  lr: 0.01    # learning rate, aligned on purpose',
  '  epochs: 3',
  "  backend: 'auto'",
  'monitor:',
  '  features: {   } # per-feature overrides',
  '',
].join('\n');
let t: TmpRepo;

const cli = (...args: string[]) => cliIn(t.root, ...args);

/** Paths whose bytes differ from what the workspace lockfile pins (sha256 of the files on disk). */
async function disagreeing(): Promise<string[]> {
  const lock = parseLockfile(t.read('artifacts.lock.yaml'));
  const bad: string[] = [];
  for (const ref of lockfileArtifacts(lock)) {
    const ok =
      fs.existsSync(path.join(t.root, ref.path)) && (await hashArtifact(t.repo, ref.path)).hash === ref.hash;
    if (!ok) bad.push(ref.path);
  }
  return bad;
}

const showAt = (spec: string) => showAtIn(t.root, spec);

async function status(): Promise<{ missingLocal: { path: string }[]; stale: string[] }> {
  const r = await cli('status', ...PIPE, '--json');
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out);
}

beforeEach(async () => {
  t = await createExperimentRepo(PARAMS);
  const exp = await cli('exp', 'run', '-S', 'train.lr=0.02', '--name', 'lr-02', ...PIPE);
  expect(exp.code, exp.err).toBe(0);
});

afterEach(async () => {
  await t.cleanup();
});

describe('gc and experiments', () => {
  it('gc keeps what experiments pin; exp apply then restores every output bit for bit', async () => {
    const expLock = parseLockfile(showAt('refs/exps/lr-02:artifacts.lock.yaml'));
    const dry = await cli('gc', '--dry');
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toMatch(/^kept by workspace: \d+ objects/m);
    expect(dry.out).toMatch(/^kept by branches \(1: main\): \d+ objects/m);
    // lr-02's model (manifest and two files) and metrics are only in the experiment.
    const only = Number(
      /^kept by experiments \(1: lr-02\): \d+ objects, (\d+) only by them/m.exec(dry.out)?.[1],
    );
    expect(only).toBeGreaterThanOrEqual(3);

    const gc = JSON.parse((await cli('gc', '--json')).out);
    expect(gc.droppedExperiments).toEqual([]);
    const cache = new Cache(t.repo);
    for (const ref of lockfileArtifacts(expLock))
      for (const oid of await artifactObjects(t.repo, ref)) expect(cache.hasSync(oid), ref.path).toBe(true);

    const applied = await cli('exp', 'apply', 'lr-02', '--json');
    expect(applied.code, applied.err).toBe(0);
    const res = JSON.parse(applied.out);
    expect(res.restored).toEqual(expect.arrayContaining(['out/model', 'out/eval/metrics.json']));
    expect(t.read('artifacts.lock.yaml')).toBe(showAt('refs/exps/lr-02:artifacts.lock.yaml'));
    expect(await disagreeing()).toEqual([]);
    const s = await status();
    expect(s.missingLocal).toEqual([]);
    expect(s.stale).toEqual([]);
  });

  it('exp apply changes only the params it sets and keeps the rest of params.yaml byte for byte', async () => {
    const before = t.read('params.yaml');
    expect((await cli('exp', 'apply', 'lr-02')).code).toBe(0);
    const after = t.read('params.yaml');
    expect(after).toBe(before.replace('lr: 0.01 ', 'lr: 0.02 '));
    // exp run wrote the experiment's params the same way.
    expect(showAt('refs/exps/lr-02:params.yaml')).toBe(after);
  });

  it('gc --no-experiments drops their artifacts; exp apply then refuses, lists them and changes nothing', async () => {
    const gc = await cli('gc', '--no-experiments');
    expect(gc.code, gc.err).toBe(0);
    expect(gc.out).toMatch(/experiments not kept \(1\): lr-02/);
    const files = ['params.yaml', 'artifacts.lock.yaml', 'out/model/weights.txt', 'out/eval/metrics.json'];
    const before = files.map((f) => (fs.existsSync(path.join(t.root, f)) ? t.read(f) : undefined));
    const refused = await cli('exp', 'apply', 'lr-02');
    expect(refused.code).toBe(1);
    const line = refused.err.split('\n').filter((l) => l.includes('exp apply lr-02'));
    expect(line).toHaveLength(1);
    expect(line[0]).toMatch(
      /exp apply lr-02: \d+ output\(s\) missing from the local cache \(no remote configured\)/,
    );
    for (const p of ['out/model', 'out/eval/metrics.json']) expect(line[0]).toContain(p);
    expect(line[0]).not.toContain('out/prepared'); // HEAD's, still cached
    expect(line[0]).not.toContain('out/gate'); // the same verdict bytes as HEAD's
    expect(files.map((f) => (fs.existsSync(path.join(t.root, f)) ? t.read(f) : undefined))).toEqual(before);
    expect(await disagreeing()).toEqual([]);
    expect((await status()).missingLocal).toEqual([]);
  });

  it('exp apply fetches what gc dropped from the remote, only what is missing', async () => {
    const remoteDir = path.join(t.root, 'remote');
    const remote = await openRemote(remoteDir);
    const expLock = parseLockfile(showAt('refs/exps/lr-02:artifacts.lock.yaml'));
    const oids = (
      await Promise.all(lockfileArtifacts(expLock).map((r) => artifactObjects(t.repo, r)))
    ).flat();
    await pushObjects(t.repo, remote, oids);
    t.write('.lockstep/config.yaml', `remote: shared\nremotes:\n  shared:\n    url: ${remoteDir}\n`);
    const plan = await collectGarbage(t.repo, { experiments: false });
    expect(plan.deleted.length).toBeGreaterThan(0);
    const res = JSON.parse((await cli('exp', 'apply', 'lr-02', '--json')).out);
    expect(res.downloaded).toBe(plan.deleted.length);
    expect(await disagreeing()).toEqual([]);
    expect((await status()).missingLocal).toEqual([]);
  });

  it('gc --exp-older-than keeps recent experiments and drops old ones', async () => {
    const recent = await collectGarbage(t.repo, { experimentMaxAgeDays: 1, dryRun: true });
    expect(recent.droppedExperiments).toEqual([]);
    const later = await collectGarbage(t.repo, {
      experimentMaxAgeDays: 1,
      dryRun: true,
      now: Date.now() + 2 * 86_400_000,
    });
    expect(later.droppedExperiments).toEqual(['lr-02']);
    expect(later.deleted.length).toBeGreaterThan(0);
    expect(later.keptBy.map((k) => k.kind)).toEqual(['workspace', 'branch', 'commit']);
  });

  it.each([[''], ['1e3'], ['0x10']])(
    'gc --exp-older-than %j (an unset variable, a float, hex) is a usage error that deletes nothing',
    async (days) => {
      const objects = () => fs.readdirSync(path.join(t.repo.cacheDir, 'sha256'), { recursive: true }).length;
      const before = objects();
      const r = await cli('gc', '--exp-older-than', days);
      expect(r.code).toBe(2);
      expect(r.err).toContain('--exp-older-than: expected a non-negative integer');
      expect(objects()).toBe(before);
      expect((await cli('exp', 'apply', 'lr-02')).code).toBe(0);
    },
  );

  it('exp queue start -j 0 is a usage error, not a silent single worker', async () => {
    const r = await cli('exp', 'queue', 'start', '-j', '0');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--jobs: expected an integer of at least 1 "0"');
  });
});
