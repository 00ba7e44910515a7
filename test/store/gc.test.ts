import { describe, expect, it, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { collectGarbage } from '../../lib/store/gc.ts';
import { Cache } from '../../lib/store/cache.ts';
import { makeRepo, writeTree, listObjects, git, rmrf, runStoreCli } from './helpers.ts';

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const cleanup: string[] = [];
afterEach(() => cleanup.splice(0).forEach(rmrf));

const run = runStoreCli;

/** Commits version `v` of d/ (one shared file, one versioned file) and returns the versioned file's oid. */
async function commitVersion(root: string, v: string): Promise<string> {
  writeTree(root, { 'd/shared.txt': 'shared', 'd/v.txt': `version ${v}` });
  expect((await run(root, 'add', 'd')).code).toBe(0);
  git(root, 'add', '-A');
  git(root, 'commit', '-qm', `data ${v}`);
  return sha(`version ${v}`);
}

describe('gc', () => {
  it('gc keeps objects of branches, tags and the last N commits and deletes the rest', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    const v1 = await commitVersion(repo.root, '1');
    git(repo.root, 'branch', 'old-branch');
    const v2 = await commitVersion(repo.root, '2');
    const v3 = await commitVersion(repo.root, '3');
    const v4 = await commitVersion(repo.root, '4');
    // An add that was never committed: its objects are garbage once the lockfile is restored.
    writeTree(repo.root, { 'd/v.txt': 'uncommitted' });
    expect((await run(repo.root, 'add', 'd')).code).toBe(0);
    git(repo.root, 'checkout', '--', 'artifacts.lock.yaml');
    const cache = new Cache(repo);
    const has = (oid: string) => cache.hasSync(oid);
    expect([v1, v2, v3, v4, sha('uncommitted')].every(has)).toBe(true);

    const dry = await run(repo.root, 'gc', '--keep-last', '2', '--dry');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would delete ${v2}`);
    expect(dry.stdout).toContain(`would delete ${sha('uncommitted')}`);
    expect(dry.stdout).not.toContain(v1);
    expect([v1, v2, v3, v4, sha('uncommitted')].every(has)).toBe(true);

    const plan = JSON.parse((await run(repo.root, 'gc', '--keep-last', '2', '--json')).stdout);
    // v2's file, v2's manifest, the uncommitted file and its manifest.
    expect(plan.deleted).toHaveLength(4);
    expect(has(v1)).toBe(true); // on a branch
    expect(has(v2)).toBe(false); // only in the third-newest commit
    expect(has(v3) && has(v4) && has(sha('shared'))).toBe(true);
    expect(has(sha('uncommitted'))).toBe(false);
    for (const [oid, p] of listObjects(repo.cacheDir)) expect(sha(fs.readFileSync(p))).toBe(oid);
  });

  it('gc stops on a malformed committed lockfile a root keeps, with one line naming the root and a fix that fits it; a root without a lockfile keeps nothing', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    const v1 = await commitVersion(repo.root, '1');
    // A commit without a lockfile, kept by a branch: nothing to keep, nothing to fail on.
    git(repo.root, 'checkout', '-q', '-b', 'no-lock');
    git(repo.root, 'rm', '-q', 'artifacts.lock.yaml');
    git(repo.root, 'commit', '-qm', 'no lockfile');
    git(repo.root, 'checkout', '-q', '-');
    const v2 = await commitVersion(repo.root, '2');
    const ok = await run(repo.root, 'gc', '--keep-last', '1', '--dry');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`would delete ${v1}`);
    expect(ok.stdout).not.toContain(v2);

    // Commits with conflict markers and with broken YAML, each kept by a tag or an experiment.
    const gitIn = (input: string, ...args: string[]) =>
      execFileSync('git', args, { cwd: repo.root, input, encoding: 'utf8' }).trim();
    const broken = (text: string) => {
      const blob = gitIn(text, 'hash-object', '-w', '--stdin');
      const tree = gitIn(`100644 blob ${blob}\tartifacts.lock.yaml\n`, 'mktree');
      return git(repo.root, 'commit-tree', tree, '-m', 'broken').trim();
    };
    const conflicted = broken('schema: 1\n<<<<<<< HEAD\ndata: {}\n=======\n>>>>>>> topic\n');
    const garbled = broken('schema: 1\nstages: {\n');
    const cases: Array<[string[], RegExp]> = [
      [
        ['tag', 'bad-tag', conflicted],
        /^lockstep: bad-tag:artifacts\.lock\.yaml:2: unresolved merge conflict \(git conflict markers\)\. Delete the tag \(git tag -d bad-tag\) or move it to a commit whose lockfile parses\.$/,
      ],
      [
        ['update-ref', 'refs/exps/bad-exp', garbled],
        /^lockstep: bad-exp:artifacts\.lock\.yaml:3: invalid YAML: .*\. Remove the experiment \(lockstep exp remove bad-exp\), or pass --no-experiments\.$/,
      ],
    ];
    for (const [[cmd, ...args], line] of cases) {
      git(repo.root, cmd!, ...args);
      const r = await run(repo.root, 'gc', '--keep-last', '1');
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(line);
      expect(new Cache(repo).hasSync(v1)).toBe(true);
      git(repo.root, ...(cmd === 'tag' ? ['tag', '-d', args[0]!] : ['update-ref', '-d', args[0]!]));
    }
  });

  it('gc drops run-cache entries whose outputs it collects and keeps the others', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    const v1 = await commitVersion(repo.root, '1');
    const cache = new Cache(repo);
    const orphan = await cache.insertBytes(Buffer.from('output of an abandoned experiment'));
    const runs = path.join(repo.stateDir, 'runs');
    fs.mkdirSync(runs, { recursive: true });
    const entry = (hash: string) =>
      JSON.stringify({
        stage: 's',
        outs: [{ path: 'out/x', hash, size: 1, nfiles: 1 }],
        created: '2026-01-01T00:00:00Z',
      });
    fs.writeFileSync(path.join(runs, 'orphan.json'), entry(orphan));
    fs.writeFileSync(path.join(runs, 'kept.json'), entry(v1));
    const plan = await collectGarbage(repo, { dryRun: true });
    expect(plan.runEntries).toBe(1);
    expect(fs.readdirSync(runs).sort()).toEqual(['kept.json', 'orphan.json']);
    expect((await collectGarbage(repo)).deleted.map((d) => d.oid)).toEqual([orphan]);
    expect(fs.readdirSync(runs)).toEqual(['kept.json']);
    expect(cache.hasSync(orphan)).toBe(false);
  });

  it('gc removes stale temp files left by killed processes', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    const tmp = new Cache(repo).tempPath();
    fs.writeFileSync(tmp, 'partial');
    const old = new Date(Date.now() - 2 * 3_600_000);
    fs.utimesSync(tmp, old, old);
    fs.writeFileSync(tmp + '-fresh', 'in flight');
    const plan = await collectGarbage(repo);
    expect(plan.staleTemps).toBe(1);
    expect(fs.readdirSync(path.dirname(tmp))).toEqual([path.basename(tmp) + '-fresh']);
  });
});
