import { describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serializeLockfile } from '../../lib/lockfile.ts';
import { environmentHistory } from '../../lib/promotion/history.ts';
import { lineageAt } from '../../lib/registry/lineage.ts';
import { listRegistry, modelAtRef, showRegistry, type RegistryEntry } from '../../lib/registry/registry.ts';
import { repoAt } from '../../lib/repo.ts';
import { modelHash, syntheticLockfile } from '../support/model-history.ts';
import { useModelHistory } from '../support/model-history-repo.ts';

const PROJECT = path.resolve(import.meta.dirname, '../..');
const N = 30;

// staging deploys models 4, 9, 14; prod deploys 9.
const repo = useModelHistory('lockstep-registry-scale-', { commits: N, stagingEvery: 5, prodEvery: 2 });
const { git, cli } = repo;

function cacheFile(): string {
  return path.join(repo.dir, '.lockstep', 'lockfile-cache.json');
}

function cached(): {
  lockfiles: Record<string, { model?: { hash: string } }>;
  chains: Record<string, unknown>;
} {
  return JSON.parse(fs.readFileSync(cacheFile(), 'utf8'));
}

/** Commits a lockfile pinning synthetic model `i` of `seed` on the checked-out branch. */
function commitModel(i: number, seed: string): string {
  fs.writeFileSync(path.join(repo.dir, 'artifacts.lock.yaml'), serializeLockfile(syntheticLockfile(i, seed)));
  git('commit', '-q', '-am', `model ${seed} ${i}`);
  return git('rev-parse', 'HEAD');
}

const models = (entries: RegistryEntry[]) => entries.map((e) => e.model.hash);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => to - 1 - k);

describe('registry at scale', () => {
  it('registry list gives every model commit newest first, with where each model ran', async () => {
    const entries = await listRegistry(repo.dir);
    expect(models(entries)).toEqual(range(0, N).map((i) => modelHash(i)));
    expect(entries[0]!.commit).toBe(repo.history.dev[N - 1]);
    expect(entries[0]!.metrics.accuracy).toBeCloseTo(0.7 + (((N - 1) * 37) % 200) / 1000);
    const where = (i: number) => entries.find((e) => e.model.hash === modelHash(i))!.environments;
    expect(where(N - 1)).toEqual([{ env: 'dev', state: 'current' }]);
    expect(where(14)).toEqual([
      { env: 'dev', state: 'past' },
      { env: 'staging', state: 'current' },
    ]);
    expect(where(9)).toEqual([
      { env: 'dev', state: 'past' },
      { env: 'staging', state: 'past' },
      { env: 'prod', state: 'current' },
    ]);
    expect(where(3)).toEqual([{ env: 'dev', state: 'past' }]);
    // The same answer from the cache it just wrote.
    expect(Object.keys(cached().lockfiles)).toHaveLength(N);
    // Each lockfile change on an environment's first-parent line is linked to the one before.
    expect(Object.keys(cached().chains)).toHaveLength(
      N + repo.history.staging.length + repo.history.prod.length,
    );
    expect(await listRegistry(repo.dir)).toEqual(entries);
    // A new commit joins the cached chain: the rest of the branch is not walked again.
    const next = commitModel(0, 'next');
    const again = await listRegistry(repo.dir);
    expect(again[0]!.commit).toBe(next);
    expect(again.find((e) => e.model.hash === modelHash(N - 1))!.environments).toEqual([
      { env: 'dev', state: 'past' },
    ]);
  });

  it('registry list --limit and --since take the newest entries', async () => {
    expect(models(await listRegistry(repo.dir, { limit: 5 }))).toEqual(
      range(N - 5, N).map((i) => modelHash(i)),
    );
    expect(await listRegistry(repo.dir, { limit: 0 })).toEqual([]);
    const after = git('log', '-1', '--format=%cI', repo.history.dev[19]!);
    const since = new Date(Date.parse(after) + 30_000).toISOString();
    expect(models(await listRegistry(repo.dir, { since }))).toEqual(range(20, N).map((i) => modelHash(i)));
    const limited = await cli('registry', 'list', '--limit', '3', '--json');
    expect(limited.code).toBe(0);
    expect(JSON.parse(limited.out)).toHaveLength(3);
    expect(JSON.parse((await cli('registry', 'list', '--since', '1 day ago', '--json')).out)).toEqual([]);
    const bad = await cli('registry', 'list', '--limit', 'ten');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--limit: expected a whole number of at least 1 "ten"/);
    const zero = await cli('registry', 'list', '--limit', '0');
    expect(zero.code).toBe(2);
    expect(zero.err).toMatch(/--limit: expected a whole number of at least 1 "0"\. Pass e\.g\. --limit 20\./);
    expect((await cli('registry', 'list', '--since', 'whenever')).code).toBe(2);
    // A --since after every commit says so, not that no commit pins a model.
    const late = await cli('registry', 'list', '--since', '2999-01-01');
    expect(late.code).toBe(0);
    expect(late.out).toMatch(/^no registry entries since 2999-01-01T00:00:00\.000Z \(--since 2999-01-01\)\./);
    // A span past what a Date holds is a usage error too, not "Invalid time value".
    const far = await cli('registry', 'list', '--since', '999999999 years ago');
    expect(far.code).toBe(2);
    expect(far.err).toMatch(/--since: not a date "999999999 years ago"\. Pass an ISO date/);
  });

  it('registry cache never serves a stale answer: a rewritten branch is listed as it is now', async () => {
    await listRegistry(repo.dir);
    git('reset', '-q', '--hard', repo.history.dev[N - 4]!);
    const a = commitModel(1, 'rewritten');
    const b = commitModel(2, 'rewritten');
    const entries = await listRegistry(repo.dir);
    expect(models(entries).slice(0, 3)).toEqual([
      modelHash(2, 'rewritten'),
      modelHash(1, 'rewritten'),
      modelHash(N - 4),
    ]);
    expect(entries.map((e) => e.commit).slice(0, 2)).toEqual([b, a]);
    expect(models(entries)).not.toContain(modelHash(N - 1));
    expect(entries[0]!.environments).toEqual([{ env: 'dev', state: 'current' }]);
    // Amending in place (same commit message, other content) is read afresh too.
    fs.writeFileSync(
      path.join(repo.dir, 'artifacts.lock.yaml'),
      serializeLockfile(syntheticLockfile(3, 'amended')),
    );
    git('commit', '-q', '--amend', '-a', '--no-edit');
    expect((await listRegistry(repo.dir))[0]!.model.hash).toBe(modelHash(3, 'amended'));
    expect((await showRegistry(repo.dir, 'dev')).environments).toEqual([{ env: 'dev', state: 'current' }]);
  });

  it('registry cache never serves a stale answer after a shallow clone is deepened', async () => {
    const clone = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-registry-shallow-'));
    try {
      execFileSync('git', ['clone', '-q', '--depth', '3', '--no-single-branch', `file://${repo.dir}`, clone]);
      const shallow = await listRegistry(clone);
      // Only what the shallow history holds: no older dev model is known there.
      expect(shallow.find((e) => e.model.hash === modelHash(0))).toBeUndefined();
      execFileSync('git', ['fetch', '-q', '--unshallow'], { cwd: clone });
      const deep = await listRegistry(clone);
      fs.rmSync(path.join(clone, '.lockstep', 'lockfile-cache.json'));
      expect(deep).toEqual(await listRegistry(clone));
      // Every old model was on dev: the cut-off walk of the shallow clone was not kept.
      expect(deep.find((e) => e.model.hash === modelHash(9))!.environments).toContainEqual({
        env: 'dev',
        state: 'past',
      });
    } finally {
      fs.rmSync(clone, { recursive: true, force: true });
    }
  });

  it('registry cache is used when present and ignored when garbled', async () => {
    await listRegistry(repo.dir);
    const blob = git('rev-parse', `${repo.history.dev[N - 1]}:artifacts.lock.yaml`);
    const file = cached();
    // A planted entry is believed (the cache is really consulted) ...
    const planted = {
      ...file.lockfiles[blob]!,
      model: { ...file.lockfiles[blob]!.model!, hash: 'f'.repeat(64) },
    };
    fs.writeFileSync(
      cacheFile(),
      JSON.stringify({ ...file, lockfiles: { ...file.lockfiles, [blob]: planted } }),
    );
    expect((await listRegistry(repo.dir, { limit: 1 }))[0]!.model.hash).toBe('f'.repeat(64));
    // ... an entry of the wrong shape is not, and neither is a garbled file.
    const wrong = { ...planted, model: { ...planted.model, hash: 'not-a-hash' } };
    fs.writeFileSync(
      cacheFile(),
      JSON.stringify({ ...file, lockfiles: { ...file.lockfiles, [blob]: wrong } }),
    );
    expect((await listRegistry(repo.dir, { limit: 1 }))[0]!.model.hash).toBe(modelHash(N - 1));
    // First-parent chain links that loop back are not followed.
    const loop = Object.fromEntries(
      Object.keys(file.chains).map((c) => [c, [blob, repo.history.dev[N - 1]]]),
    );
    fs.writeFileSync(cacheFile(), JSON.stringify({ ...file, chains: loop }));
    expect((await showRegistry(repo.dir, 'staging', { history: true })).environments).toEqual([
      { env: 'dev', state: 'past' },
      { env: 'staging', state: 'current' },
    ]);
    fs.writeFileSync(cacheFile(), '{"format": 1, "lockfiles": {');
    expect(models(await listRegistry(repo.dir))).toEqual(range(0, N).map((i) => modelHash(i)));
    expect(Object.keys(cached().lockfiles)).toHaveLength(N);
  });

  it('registry cache survives concurrent commands: each answers fully, the file stays whole', async () => {
    const spawnList = () =>
      new Promise<{ code: number | null; out: string }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [path.join(PROJECT, 'bin', 'lockstep.mjs'), 'registry', 'list', '--json'],
          {
            cwd: repo.dir,
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, out }));
      });
    const runs = await Promise.all([spawnList(), spawnList(), spawnList()]);
    for (const r of runs) {
      expect(r.code).toBe(0);
      expect(models(JSON.parse(r.out))).toEqual(range(0, N).map((i) => modelHash(i)));
    }
    expect(Object.keys(cached().lockfiles)).toHaveLength(N);
    expect(fs.readdirSync(path.join(repo.dir, '.lockstep', 'tmp'))).toEqual([]);
  });

  it('registry show, get and lineage read the one lockfile of their ref', async () => {
    const back = `HEAD~${N - 10}`;
    const shown = await showRegistry(repo.dir, back);
    expect(shown.commit).toBe(repo.history.dev[9]);
    expect(shown.model.hash).toBe(modelHash(9));
    // Where the model is now: the environments whose branch head pins it, no history walked.
    expect(shown.history).toBe(false);
    expect(shown.environments).toEqual([{ env: 'prod', state: 'current' }]);
    // Nothing was cached: what it read does not grow with the history.
    expect(fs.existsSync(cacheFile())).toBe(false);
    expect((await modelAtRef(repo.dir, 'staging')).model.hash).toBe(modelHash(14));
    const lineage = await lineageAt(repo.dir, 'prod');
    expect(lineage.model).toBe(modelHash(9));
    expect(lineage.commit).toBe(repo.history.prod[0]!.commit);
    expect(fs.existsSync(cacheFile())).toBe(false);
    await expect(showRegistry(repo.dir, repo.history.root)).rejects.toThrow(
      /artifacts\.lock\.yaml does not exist at/,
    );

    // With --history, also where it was deployed before.
    const past = await showRegistry(repo.dir, back, { history: true });
    expect(past.history).toBe(true);
    expect(past.environments).toEqual([
      { env: 'dev', state: 'past' },
      { env: 'staging', state: 'past' },
      { env: 'prod', state: 'current' },
    ]);
    // Working out where model 9 ran parsed only lockfiles that mention it, not the history.
    const parsed = Object.values(cached().lockfiles);
    expect(parsed.length).toBeLessThan(6);
    expect(
      parsed.every(
        (s) =>
          s.model?.hash === modelHash(9) ||
          s.model?.hash === modelHash(N - 1) ||
          s.model?.hash === modelHash(14),
      ),
    ).toBe(true);
  });

  it('registry show runs no history walk; show --history does', async () => {
    // A git on PATH that logs each command, then runs the real one.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-registry-git-'));
    const log = path.join(bin, 'calls.log');
    const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    fs.writeFileSync(
      path.join(bin, 'git'),
      `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${realGit}' "$@"\n`,
      { mode: 0o755 },
    );
    const calls = (...args: string[]): string[] => {
      fs.rmSync(log, { force: true });
      const res = spawnSync(process.execPath, [path.join(PROJECT, 'bin', 'lockstep.mjs'), ...args], {
        cwd: repo.dir,
        encoding: 'utf8',
        env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH}` },
      });
      // `get` of a synthetic model (no bytes anywhere) fails once it has read the lockfile.
      expect(res.status, res.stderr).toBe(args[1] === 'get' ? 1 : 0);
      return fs.readFileSync(log, 'utf8').trim().split('\n');
    };
    const walks = (lines: string[]) => lines.filter((l) => /(^| )(log|rev-list) /.test(l));
    try {
      const back = `HEAD~${N - 10}`;
      const plain = calls('registry', 'show', back);
      expect(walks(plain)).toEqual([]);
      expect(walks(calls('registry', 'get', back, '--out', path.join(bin, 'never')))).toEqual([]);
      expect(walks(calls('lineage', back))).toEqual([]);
      // The same command with --history walks the environments' histories: the check can fail.
      expect(walks(calls('registry', 'show', back, '--history')).length).toBeGreaterThan(0);
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  it('registry show never serves a stale answer: a rewritten environment branch is read as it is now', async () => {
    const m14 = repo.history.dev[14]!;
    expect((await showRegistry(repo.dir, m14)).environments).toEqual([{ env: 'staging', state: 'current' }]);
    expect((await showRegistry(repo.dir, m14, { history: true })).environments).toEqual([
      { env: 'dev', state: 'past' },
      { env: 'staging', state: 'current' },
    ]);
    // staging is moved back to its second deploy (model 9): model 14 was never deployed there.
    git('branch', '-f', 'staging', repo.history.staging[1]!.commit);
    expect((await showRegistry(repo.dir, m14)).environments).toEqual([]);
    expect((await showRegistry(repo.dir, m14, { history: true })).environments).toEqual([
      { env: 'dev', state: 'past' },
    ]);
    expect((await showRegistry(repo.dir, repo.history.dev[9]!)).environments).toEqual([
      { env: 'staging', state: 'current' },
      { env: 'prod', state: 'current' },
    ]);
    const out = await cli('registry', 'show', repo.history.dev[9]!);
    expect(out.out).toMatch(
      /environments: staging \(current\), prod \(current\); earlier deploys: --history, or lockstep history <env>/,
    );
    expect((await cli('registry', 'show', repo.history.dev[9]!, '--history')).out).toMatch(
      /environments: dev \(past\), staging \(current\), prod \(current\)\n/,
    );
  });

  it('history lists each deploy of the branch, newest first, from the branch history alone', async () => {
    execFileSync('git', ['tag', 'speech-emotion#staging#1', repo.history.staging[0]!.commit], {
      cwd: repo.dir,
    });
    const history = await environmentHistory(repoAt(repo.dir), 'staging');
    expect(history.changes.map((c) => c.model)).toEqual([14, 9, 4].map((i) => modelHash(i)));
    expect(history.changes.map((c) => c.commit)).toEqual(repo.history.staging.map((s) => s.commit).reverse());
    expect(history.changes.map((c) => c.current)).toEqual([true, false, false]);
    expect(history.changes[2]!.tags).toEqual(['speech-emotion#staging#1']);
    expect(history.changes[0]!.metrics.f1_macro).toBeCloseTo(0.7 + ((14 * 37) % 200) / 1000 - 0.01);
  });

  it('registry skips a committed lockfile that does not parse; show on it names the problem', async () => {
    fs.writeFileSync(path.join(repo.dir, 'artifacts.lock.yaml'), '<<<<<<< HEAD\nschema: 1\n=======\n');
    git('commit', '-q', '-am', 'broken merge');
    const broken = git('rev-parse', 'HEAD');
    commitModel(0, 'after');
    const entries = await listRegistry(repo.dir);
    expect(entries.map((e) => e.commit)).not.toContain(broken);
    expect(models(entries).slice(0, 2)).toEqual([modelHash(0, 'after'), modelHash(N - 1)]);
    await expect(showRegistry(repo.dir, broken)).rejects.toThrow(/artifacts\.lock\.yaml@[0-9a-f]{8}:\d+: /);
  });
});
