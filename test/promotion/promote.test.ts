import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rm, writeFile, mkdtemp, readFile, readdir, mkdir } from 'node:fs/promises';
import os from 'node:os';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { planPromotion } from '../../lib/promotion/promote.ts';
import { listRegistry } from '../../lib/registry/registry.ts';
import { GOOD, makeRegistryRepo, type RegistryRepo } from './fixture.ts';

const PROJECT = path.resolve(import.meta.dirname, '../..');

let r: RegistryRepo;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', r.dir, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

async function tags(): Promise<string[]> {
  return (await r.git.raw(['tag', '--list'])).split('\n').filter(Boolean).sort();
}

/** Adds a per-speaker `f1_macro >= 0.5` slice rule to staging's policy, committed. */
async function requireSpeakerF1AtLeastHalf(): Promise<void> {
  const policy = path.join(r.dir, 'promotion', 'staging.yaml');
  const text = await readFile(policy, 'utf8');
  await writeFile(
    policy,
    text.replace('  thresholds:\n', '  thresholds:\n    - { metric: f1_macro, slice: speaker, min: 0.5 }\n'),
  );
  await r.git.add('.');
  await r.git.commit('staging: every speaker at 0.5 or better');
}

/** The evaluate out (out/eval/metrics.json) the lockfile at `commit` pins. */
async function evaluateOut(commit: string): Promise<{ hash: string }> {
  const { readLockfileAt } = await import('../../lib/environment/revision.ts');
  return (await readLockfileAt(r.dir, commit))!.stages.evaluate!.outs[0]!;
}

/** Removes an object from the local cache (the remote keeps whatever it has). */
async function dropFromCache(out: { hash: string }): Promise<void> {
  const { Cache } = await import('../../lib/store/cache.ts');
  await rm(new Cache(r.repo).objectPath(out.hash));
}

beforeEach(async () => {
  r = await makeRegistryRepo();
});
afterEach(async () => {
  await r.cleanup();
});

describe('promote --local', () => {
  it('promote moves a model dev → staging → prod with GTO tags and history', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    const staging = await cli('promote', 'staging', '--local');
    expect(staging.err).toBe('');
    expect(staging.code).toBe(0);
    expect((await r.git.revparse(['staging'])).trim()).toBe(v1.commit);
    const prod = await cli('promote', 'prod', '--local');
    expect(prod.code).toBe(0);
    expect(await tags()).toEqual([
      'speech-emotion#prod#1',
      'speech-emotion#staging#1',
      'speech-emotion@v0.1.0',
    ]);

    // A second, better model goes through the same path; staging fast-forwards (no merge commit).
    await r.git.checkout('dev');
    const v2 = await r.commitModel({ content: 'v2', metrics: { accuracy: 0.85, f1_macro: 0.84, mcc: 0.8 } });
    const second = await cli('promote', 'staging', '--local');
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/fast-forwarded staging to /);
    expect((await r.git.revparse(['staging'])).trim()).toBe(v2.commit);
    expect(await tags()).toContain('speech-emotion@v0.2.0');
    expect(await tags()).toContain('speech-emotion#staging#2');

    const hist = JSON.parse((await cli('history', 'staging', '--json')).out);
    expect(hist.changes.map((c: { model: string }) => c.model)).toEqual([v2.model.hash, v1.model.hash]);
    expect(hist.changes[0].current).toBe(true);
    expect(hist.records).toHaveLength(2);

    const entries = await listRegistry(r.dir);
    const byModel = new Map(entries.map((e) => [e.model.hash, e]));
    expect(byModel.get(v2.model.hash)!.environments).toEqual([
      { env: 'dev', state: 'current' },
      { env: 'staging', state: 'current' },
    ]);
    expect(byModel.get(v1.model.hash)!.environments).toEqual([
      { env: 'dev', state: 'past' },
      { env: 'staging', state: 'past' },
      { env: 'prod', state: 'current' },
    ]);
  });

  it('promote stays linear over many promote and rollback cycles: no merge back, no conflict', async () => {
    const devCommits: string[] = [];
    const modes: string[] = [];
    for (let cycle = 1; cycle <= 6; cycle++) {
      const v = await r.commitModel({ content: `cycle-${cycle}`, metrics: GOOD });
      devCommits.push(v.commit);
      for (const env of ['staging', 'prod']) {
        const res = await cli('promote', env, '--local', '--json');
        expect(res.err, `cycle ${cycle} ${env}`).toBe('');
        const plan = JSON.parse(res.out);
        modes.push(`${env}:${plan.mode}`);
        // The environment now holds exactly the promoted commit's tree.
        const tree = (b: string) => r.git.raw(['rev-parse', `${b}^{tree}`]);
        expect(await tree(env)).toBe(await tree(v.commit));
      }
      // Every other cycle a rollback lands on staging, every third on prod.
      if (cycle > 1 && cycle % 2 === 0) expect((await cli('rollback', 'staging', '--local')).code).toBe(0);
      if (cycle > 1 && cycle % 3 === 0) expect((await cli('rollback', 'prod', '--local')).code).toBe(0);
    }
    // dev never took a commit from an environment branch.
    const devOwn = (await r.git.raw(['rev-list', '--first-parent', 'dev'])).trim().split('\n');
    expect(devOwn.slice(0, devCommits.length).reverse()).toEqual(devCommits);
    expect(await r.git.raw(['rev-list', '--merges', 'dev'])).toBe('');
    // Fast-forward while the branch is an ancestor of its upstream; once a rollback commit lands
    // on it, it takes upstream's tree in one commit on top (and stays that way: its own commits
    // never go back upstream).
    expect(modes).toEqual([
      'staging:create',
      'prod:create',
      'staging:fast-forward',
      'prod:fast-forward',
      'staging:take-upstream', // after the rollback on staging in cycle 2
      'prod:fast-forward', // prod is still an ancestor of staging
      'staging:take-upstream',
      'prod:take-upstream', // after the rollback on prod in cycle 3
      'staging:take-upstream',
      'prod:take-upstream',
      'staging:take-upstream',
      'prod:take-upstream',
    ]);
    // The branches' first-parent history is linear: one commit per promotion or rollback.
    const stagingLog = (await r.git.raw(['log', '--first-parent', '--format=%s', 'staging'])).split('\n');
    expect(stagingLog.filter((l) => l.startsWith('Roll back staging'))).toHaveLength(3);
    const hist = JSON.parse((await cli('history', 'prod', '--json')).out);
    expect(hist.changes[0].current).toBe(true);
  });

  it('promote refuses to skip an environment', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD });
    const res = await cli('promote', 'prod', '--from', 'dev', '--local');
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/skipping an environment: prod is promoted only from staging, not dev/);
    expect(await tags()).toEqual([]);
  });

  it('promote refuses the first environment and unknown ones', async () => {
    expect((await cli('promote', 'dev', '--local')).err).toMatch(/first environment/);
    const bad = await cli('promote', 'qa', '--local');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/environment "qa": unknown/);
  });

  it('promote refuses a model that fails the target gate', async () => {
    await r.commitModel({ content: 'weak', metrics: { accuracy: 0.45, f1_macro: 0.42, mcc: 0.3 } });
    const res = await cli('promote', 'staging', '--local');
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/staging gate: fails staging's gate/);
    expect(res.err).toMatch(/f1_macro/);
  });

  it('promote refuses a model that regressed against the one deployed', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD });
    expect((await cli('promote', 'staging', '--local')).code).toBe(0);
    await r.commitModel({ content: 'v2', metrics: { accuracy: 0.7, f1_macro: 0.7, mcc: 0.6 } });
    const plan = await planPromotion(r.repo, 'staging', { local: true });
    expect(plan.ok).toBe(false);
    expect(plan.baseline?.metrics.f1_macro).toBe(0.8);
    expect(plan.gate.reasons.some((x) => !x.passed && x.kind === 'change')).toBe(true);
  });

  it('promote judges a slice rule on the slices in the evaluate out, from the remote when the cache lacks them', async () => {
    await requireSpeakerF1AtLeastHalf();
    const speaker = (f1: number) => ({
      n: 30,
      speakers: 1,
      min_size: 20,
      metrics: { f1_macro: f1 },
      intervals: {},
    });
    const v1 = await r.commitModel({
      content: 'v1',
      metrics: GOOD,
      evalExtra: { slices: { speaker: { S03: speaker(0.4), S08: speaker(0.9) } } },
    });
    // The lockfile holds the headline metrics only; the slices are in out/eval/metrics.json.
    expect(await readFile(path.join(r.dir, 'artifacts.lock.yaml'), 'utf8')).not.toMatch(/S03/);
    await dropFromCache(await evaluateOut(v1.commit));

    const plan = await planPromotion(r.repo, 'staging', { local: true });
    const rule = plan.gate.reasons.find((x) => x.slice === 'speaker');
    expect(rule).toMatchObject({ passed: false });
    expect(rule!.detail).toMatch(/S03 0\.4/);
    expect(plan.ok).toBe(false);
  });

  it('promote refuses, naming the file, a slice rule whose slices neither the cache nor the remote has', async () => {
    await requireSpeakerF1AtLeastHalf();
    const speaker = { n: 30, speakers: 1, min_size: 20, metrics: { f1_macro: 0.9 }, intervals: {} };
    const v1 = await r.commitModel({
      content: 'v1',
      metrics: GOOD,
      evalExtra: { slices: { speaker: { S03: speaker, S08: speaker } } },
      push: false,
    });
    await dropFromCache(await evaluateOut(v1.commit));

    await expect(planPromotion(r.repo, 'staging', { local: true })).rejects.toThrow(
      /^out\/eval\S*@\S+@[0-9a-f]{8}: object is in neither the cache nor the remote file:\S+ "[0-9a-f]{64}"\. Push it .*A slice threshold needs the evaluate slices of /,
    );
    const res = await cli('promote', 'staging', '--local');
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/A slice threshold needs the evaluate slices/);
    expect(res.err.trim().split('\n')).toHaveLength(1);
  });

  it('promote reads no baseline slices for a slice min: a target out gone from the store does not refuse it', async () => {
    await requireSpeakerF1AtLeastHalf();
    const speaker = { n: 30, speakers: 1, min_size: 20, metrics: { f1_macro: 0.9 }, intervals: {} };
    const evalExtra = { slices: { speaker: { S03: speaker, S08: speaker } } };
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD, evalExtra });
    expect((await cli('promote', 'staging', '--local')).code).toBe(0);
    const { objectKey } = await import('../../lib/store/remote.ts');
    const deployed = await evaluateOut(v1.commit);
    await dropFromCache(deployed);
    await rm(path.join(r.remoteDir, objectKey(deployed.hash)));

    await r.git.checkout('dev');
    await r.commitModel({
      content: 'v2',
      metrics: { accuracy: 0.85, f1_macro: 0.84, mcc: 0.8 },
      evalExtra: { slices: { speaker: { S03: { ...speaker, metrics: { f1_macro: 0.8 } }, S08: speaker } } },
    });
    const plan = await planPromotion(r.repo, 'staging', { local: true });
    expect(plan.baseline?.commit).toBe(v1.commit);
    expect(plan.gate.reasons.find((x) => x.slice === 'speaker')).toMatchObject({ passed: true });
  });

  it('promote refuses a model whose own gate failed', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD, gatePassed: 0 });
    const res = await cli('promote', 'staging', '--local');
    expect(res.err).toMatch(/recorded gate: the model failed its gate on dev/);
  });

  it('promote refuses artifacts missing from the remote', async () => {
    await r.commitModel({ content: 'unpushed', metrics: GOOD, push: false });
    const res = await cli('promote', 'staging', '--local');
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/artifacts in the remote: \d+ of \d+ objects missing from/);
  });

  it('promote refuses a lockfile whose hashes do not match the stored objects', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD, lieAboutSize: true });
    const res = await cli('promote', 'staging', '--local');
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/stored objects match the lockfile: out\/model: stored manifest has/);
  });

  it('promote refuses a dirty working tree', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD });
    await writeFile(path.join(r.dir, 'params.yaml'), 'train:\n  epochs: 3\n');
    const res = await cli('promote', 'staging', '--local');
    expect(res.err).toMatch(/clean working tree: dirty working tree/);
  });

  it('promote refuses a diverged target branch', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD });
    expect((await cli('promote', 'staging', '--local')).code).toBe(0);
    await r.git.checkout('staging');
    await writeFile(path.join(r.dir, 'hotfix.txt'), 'hotfix\n');
    await r.git.add('hotfix.txt');
    await r.git.commit('hotfix on staging');
    await r.git.checkout('dev');
    await r.commitModel({ content: 'v2', metrics: GOOD });
    const res = await cli('promote', 'staging', '--local');
    expect(res.err).toMatch(/target not diverged: staging has 1 commit\(s\) not in dev/);
  });

  it('promote --dry prints the plan and changes nothing', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD });
    const res = await cli('promote', 'staging', '--dry', '--json');
    expect(res.code).toBe(0);
    const plan = JSON.parse(res.out);
    expect(plan.ok).toBe(true);
    expect(plan.checks.map((c: { name: string }) => c.name)).toContain('artifacts in the remote');
    expect(await r.git.raw(['branch', '--list', 'staging'])).toBe('');
  });
});

describe('registry', () => {
  it('registry get fetches an old model after the workspace moved on, from the remote', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    await r.commitModel({ content: 'v2', metrics: GOOD });
    // Empty the local cache: everything must come from the remote, verified.
    await rm(path.join(r.dir, '.lockstep', 'cache'), { recursive: true, force: true });
    const out = await mkdtemp(path.join(os.tmpdir(), 'lockstep-get-'));
    try {
      const res = await cli('registry', 'get', v1.commit, '--out', path.join(out, 'm'), '--json');
      expect(res.err).toBe('');
      expect(JSON.parse(res.out).model).toBe(v1.model.hash);
      expect(JSON.parse(await readFile(path.join(out, 'm', 'model.json'), 'utf8'))).toEqual({
        content: 'v1',
      });
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('registry get never deletes what already sits at --out (the repository itself included)', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD });
    await writeFile(path.join(r.dir, 'notes.txt'), 'mine');
    const before = (await readdir(r.dir)).sort();
    for (const out of ['.', 'notes.txt']) {
      const res = await cli('registry', 'get', 'HEAD', '--out', out);
      expect(res.code, out).toBe(1);
      expect(res.err).toMatch(
        /--out: already exists \(a (directory that is not empty|file)\) ".*"\. Name a new --out path/,
      );
      expect(res.err.trim().split('\n')).toHaveLength(1);
    }
    expect((await readdir(r.dir)).sort()).toEqual(before);
    expect(await readFile(path.join(r.dir, 'notes.txt'), 'utf8')).toBe('mine');
    // An empty directory is filled.
    await mkdir(path.join(r.dir, 'empty'));
    const ok = await cli('registry', 'get', 'HEAD', '--out', 'empty');
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(await readFile(path.join(r.dir, 'empty', 'model.json'), 'utf8'))).toEqual({
      content: 'v1',
    });
  });

  it('registry get refuses a corrupted remote object', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    await rm(path.join(r.dir, '.lockstep', 'cache'), { recursive: true, force: true });
    // Corrupt the weights object on the remote.
    const { readManifest } = await import('../../lib/registry/fetch.ts');
    const { openRemote } = await import('../../lib/store/open-remote.ts');
    const remote = await openRemote(r.remoteDir);
    const manifest = await readManifest(r.repo, v1.model, { remote });
    const weights = manifest.entries.find((e) => e.path === 'weights.bin')!;
    // The model's files travel in one pack (lib/store/packs.ts): the weights' bytes in it rot.
    const { chmod, readFile: readBytes } = await import('node:fs/promises');
    const { packGroups } = await import('../../lib/store/packs.ts');
    const { objectKey } = await import('../../lib/store/remote.ts');
    const [group] = packGroups(manifest.entries);
    const p = path.join(r.remoteDir, objectKey(group!.id));
    let at = 0;
    for (const m of group!.members) {
      if (m.oid === weights.sha256) break;
      at += m.size;
    }
    const bytes = await readBytes(p);
    bytes[at] = bytes[at]! ^ 0xff;
    await chmod(p, 0o644);
    await writeFile(p, bytes);
    const res = await cli('registry', 'get', 'HEAD', '--out', path.join(r.dir, 'got'));
    expect(res.code).toBe(1);
    expect(res.err.split('\n')).toHaveLength(1);
    expect(res.err).toMatch(new RegExp(weights.sha256.slice(2, 14)));
    expect(res.err).toMatch(/remote pack does not match the files it holds/);
  });

  it('registry show and lineage resolve environments, tags and commits', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    await cli('promote', 'staging', '--local');
    for (const ref of ['staging', 'speech-emotion@v0.1.0', v1.commit.slice(0, 10), 'dev']) {
      const res = await cli('registry', 'show', ref, '--json');
      expect(res.err).toBe('');
      expect(JSON.parse(res.out).model.hash).toBe(v1.model.hash);
    }
    const lin = JSON.parse((await cli('lineage', 'staging', '--json')).out);
    expect(lin.model).toBe(v1.model.hash);
    expect(lin.params['train.epochs']).toBe(3);
    expect(lin.edges).toContainEqual({ from: 'train', to: 'evaluate', path: 'out/model' });
    const missing = await cli('registry', 'show', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/ref "nope": not a commit, branch, tag or environment/);
    expect((await cli('registry', 'show', 'prod')).err).toMatch(/environment branch "prod" does not exist/);
  });
});

describe('rollback --local', () => {
  it('rollback restores the previous model on the environment branch', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    await cli('promote', 'staging', '--local');
    const v2 = await r.commitModel({ content: 'v2', metrics: { accuracy: 0.81, f1_macro: 0.81, mcc: 0.76 } });
    await cli('promote', 'staging', '--local');
    const shown = JSON.parse((await cli('registry', 'show', 'staging', '--json')).out);
    expect(shown.model.hash).toBe(v2.model.hash);
    const res = await cli('rollback', 'staging', '--local');
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    const after = JSON.parse((await cli('registry', 'show', 'staging', '--json')).out);
    expect(after.model.hash).toBe(v1.model.hash);
    const hist = JSON.parse((await cli('history', 'staging', '--json')).out);
    expect(hist.changes.map((c: { model: string }) => c.model)).toEqual([
      v1.model.hash,
      v2.model.hash,
      v1.model.hash,
    ]);
    expect(hist.records.at(-1).status).toBe('rolled_back');
  });

  it('promote run again changes nothing: no tag, no record, no commit', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    expect((await cli('promote', 'staging', '--local')).code).toBe(0);
    const before = {
      tags: await tags(),
      records: JSON.parse((await cli('history', 'staging', '--json')).out).records,
    };
    const again = await cli('promote', 'staging', '--local');
    expect(again.code).toBe(0);
    expect(again.out).toMatch(
      /staging already has dev [0-9a-f]{8} \(model [0-9a-f]{12}\): nothing to promote/,
    );
    expect(await tags()).toEqual(before.tags);
    expect(JSON.parse((await cli('history', 'staging', '--json')).out).records).toEqual(before.records);
    expect((await r.git.revparse(['staging'])).trim()).toBe(v1.commit);
    // After a rollback and a take-upstream promotion, the branch head is not dev's commit but
    // holds its tree: running it again is still a no-op.
    await r.commitModel({ content: 'v2', metrics: { accuracy: 0.81, f1_macro: 0.81, mcc: 0.76 } });
    await cli('promote', 'staging', '--local');
    await cli('rollback', 'staging', '--local');
    expect((await cli('promote', 'staging', '--local')).out).toMatch(/took dev's tree/);
    const head = (await r.git.revparse(['staging'])).trim();
    const tagsNow = await tags();
    expect((await cli('promote', 'staging', '--local')).out).toMatch(/nothing to promote/);
    expect((await r.git.revparse(['staging'])).trim()).toBe(head);
    expect(await tags()).toEqual(tagsNow);
  });

  it('rollback twice does not put back the model the first rollback took off', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    await cli('promote', 'staging', '--local');
    const v2 = await r.commitModel({ content: 'v2', metrics: { accuracy: 0.81, f1_macro: 0.81, mcc: 0.76 } });
    await cli('promote', 'staging', '--local');
    const v3 = await r.commitModel({ content: 'v3', metrics: { accuracy: 0.82, f1_macro: 0.82, mcc: 0.77 } });
    await cli('promote', 'staging', '--local');
    const pinned = async () =>
      JSON.parse((await cli('registry', 'show', 'staging', '--json')).out).model.hash;
    expect((await cli('rollback', 'staging', '--local')).code).toBe(0);
    expect(await pinned()).toBe(v2.model.hash);
    expect((await cli('rollback', 'staging', '--local')).code).toBe(0);
    expect(await pinned()).toBe(v1.model.hash);
    const third = await cli('rollback', 'staging', '--local');
    expect(third.code).toBe(1);
    expect(third.err.split('\n')).toHaveLength(1);
    expect(third.err).toMatch(/staging: every earlier model was rolled back from\. Pass --to/);
    expect(await pinned()).toBe(v1.model.hash);
    // An explicit --to still may, and a model promoted again counts as deployed again.
    expect((await cli('rollback', 'staging', '--local', '--to', v3.model.hash.slice(0, 12))).code).toBe(0);
    expect(await pinned()).toBe(v3.model.hash);
  });

  it('an environment is its branch even when a tag has the same name', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    await cli('promote', 'staging', '--local');
    const v2 = await r.commitModel({ content: 'v2', metrics: { accuracy: 0.81, f1_macro: 0.81, mcc: 0.76 } });
    await cli('promote', 'staging', '--local');
    // `git tag staging <old commit>`: git's own lookup order would prefer the tag to the branch.
    await r.git.raw(['tag', 'staging', v1.commit]);
    const shown = JSON.parse((await cli('registry', 'show', 'staging', '--json')).out);
    expect(shown.model.hash).toBe(v2.model.hash);
    const entries = await listRegistry(r.dir);
    expect(entries.find((e) => e.model.hash === v2.model.hash)!.environments).toContainEqual({
      env: 'staging',
      state: 'current',
    });
    const { readDesiredModel } = await import('../../lib/canary/desired.ts');
    expect((await readDesiredModel(r.repo, { env: 'staging' })).hash).toBe(v2.model.hash);
    const hist = JSON.parse((await cli('history', 'staging', '--json')).out);
    expect(hist.changes[0].model).toBe(v2.model.hash);
  });

  it('registry show of a missing first environment says how to start it, not to promote into it', async () => {
    await r.git.raw(['branch', '-m', 'dev', 'main']);
    const dev = await cli('registry', 'show', 'dev');
    expect(dev.code).toBe(1);
    expect(dev.err).toMatch(
      /dev: environment branch "dev" does not exist yet\. Create it \(git branch dev\)/,
    );
    expect(dev.err).not.toMatch(/promote dev/);
    expect((await cli('registry', 'show', 'staging')).err).toMatch(/lockstep promote staging/);
  });

  it('two rollbacks at once take turns: each acts on what the other left', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    await cli('promote', 'staging', '--local');
    await r.commitModel({ content: 'v2', metrics: { accuracy: 0.81, f1_macro: 0.81, mcc: 0.76 } });
    await cli('promote', 'staging', '--local');
    await r.commitModel({ content: 'v3', metrics: { accuracy: 0.82, f1_macro: 0.82, mcc: 0.77 } });
    await cli('promote', 'staging', '--local');
    const rollback = () =>
      new Promise<{ code: number | null; err: string }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [path.join(PROJECT, 'bin', 'lockstep.mjs'), 'rollback', 'staging', '--local'],
          {
            cwd: r.dir,
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
        let err = '';
        child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, err }));
      });
    const runs = await Promise.all([rollback(), rollback()]);
    // Unlocked, both planned v3 → v2 and the second failed on the moved branch.
    expect(runs.map((x) => x.code)).toEqual([0, 0]);
    const shown = JSON.parse((await cli('registry', 'show', 'staging', '--json')).out);
    expect(shown.model.hash).toBe(v1.model.hash);
    const log = (await r.git.raw(['log', '--first-parent', '--format=%s', 'staging'])).split('\n');
    expect(log.filter((l) => l.startsWith('Roll back staging'))).toHaveLength(2);
  }, 60_000);

  it('rollback refuses when there is nothing earlier', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD });
    await cli('promote', 'staging', '--local');
    const res = await cli('rollback', 'staging', '--local');
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/only one model was ever deployed/);
  });
});
