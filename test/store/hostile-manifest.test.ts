/**
 * Hostile directory manifests through every command that materializes one: each rule of
 * lib/entry-path.ts is broken by one manifest, which sits in the cache and the remote and
 * is pinned by the lockfile (as a tracked directory and as the model). Every command must refuse
 * it with an UnsafePathError naming the artifact and the entry, and write nothing: not outside
 * the repository, not inside its work tree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { UnsafePathError } from '../../lib/errors.ts';
import { parseLockfile, serializeLockfile } from '../../lib/lockfile.ts';
import { openArtifact } from '../../lib/registry/fetch.ts';
import { verifyRef } from '../../lib/registry/verify.ts';
import { materializeModel, modelDir } from '../../lib/serving/model-store.ts';
import { writeExperiment } from '../../lib/experiments/store.ts';
import { createPipelineRepo, runFixture } from '../pipeline/helpers.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const PWNED = Buffer.from('pwned\n');
/** Where an escaping entry would land: a fresh name in the system's temp folder. */
const ESCAPE = path.join(os.tmpdir(), `lockstep-escape-${randomBytes(6).toString('hex')}`);

const CASES: Array<[string, string[], RegExp]> = [
  ['".." climbing out', ['../'.repeat(24) + ESCAPE.slice(1)], /climbs out/],
  ['".." in the middle', ['a/../../escape.txt'], /climbs out/],
  ['absolute path', [ESCAPE], /absolute/],
  ['drive letter', ['C:/escape.txt'], /absolute/],
  ['backslash', ['..\\..\\escape.txt'], /backslash/],
  ['NUL', ['escape\u0000.txt'], /control/],
  ['control character', ['escape\n.txt'], /control/],
  ['empty path', [''], /empty path/],
  ['empty segment', ['a//escape.txt'], /empty or "\." segment/],
  ['"." segment', ['./escape.txt'], /empty or "\." segment/],
  ['trailing slash', ['dir/'], /empty or "\." segment/],
  ['lone surrogate', ['\ud800.txt'], /not valid Unicode/],
  ['duplicate', ['same.txt', 'same.txt'], /duplicate/],
  ['file and directory', ['node', 'node/inner.txt'], /inside "node", which is a file/],
  ['case only', ['Readme.txt', 'README.txt'], /only by case/],
  ['NFC and NFD', ['caf\u00e9.txt', 'cafe\u0301.txt'], /Unicode normalization/],
  ['directory case', ['Dir/a.txt', 'dir/b.txt'], /only by case/],
  ['long segment', ['a'.repeat(300)], /segment longer than 255/],
  ['long path', [Array.from({ length: 20 }, () => 'b'.repeat(60)).join('/')], /longer than 1024/],
  ['deep nesting', [`${'d/'.repeat(100)}escape.txt`], /deeper than 64/],
];

let t: TmpRepo;
let remote: string;
let cleanLock: string;

/** Writes `bytes` as an object under a cache or local remote directory. */
function storeObject(root: string, bytes: Uint8Array): string {
  const oid = sha(bytes);
  const file = path.join(root, 'sha256', oid.slice(0, 2), oid.slice(2));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (!fs.existsSync(file)) fs.writeFileSync(file, bytes);
  return oid;
}

/** Every file and directory of the work tree (not .git, not the cache) with its content. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const rel = prefix + e.name;
      if (rel === '.git' || rel === '.lockstep/cache' || rel === '.lockstep/state') continue;
      if (e.isDirectory()) {
        out.push(`${rel}/`);
        walk(path.join(dir, e.name), `${rel}/`);
      } else out.push(`${rel} ${sha(fs.readFileSync(path.join(dir, e.name)))}`);
    }
  };
  walk(root, '');
  return out;
}

async function cli(...args: string[]): Promise<{ code: number; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', t.root, ...args], o);
  return { code, err: o.stderr.join('\n') };
}

beforeAll(async () => {
  t = await createPipelineRepo();
  t.write('.gitignore', '/.lockstep/*\n!/.lockstep/config.yaml\n/out/\n/logs/\n/data/x\n/fetched/\n');
  await runFixture(t);
  t.commit('pipeline ran');
  cleanLock = t.read('artifacts.lock.yaml');
  remote = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-hostile-remote-'));
  storeObject(remote, PWNED);
  storeObject(t.repo.cacheDir, PWNED);
}, 120_000);

afterAll(async () => {
  await t.cleanup();
  fs.rmSync(remote, { recursive: true, force: true });
});

describe('hostile manifests', () => {
  it.each(CASES)(
    'a manifest with %s is refused by pull, repro, exp apply, verify, registry get, openArtifact and model load',
    async (name, paths, problem) => {
      const manifest = Buffer.from(
        JSON.stringify({ entries: paths.map((p) => ({ path: p, sha256: sha(PWNED), size: PWNED.length })) }),
      );
      const hash = storeObject(remote, manifest);
      storeObject(t.repo.cacheDir, manifest);
      const ref = { hash, size: PWNED.length * paths.length, nfiles: paths.length, dir: true };
      const lock = parseLockfile(cleanLock);
      lock.data['data/x'] = ref;
      lock.stages.train!.outs = [{ path: 'out/model', ...ref }];
      t.write('artifacts.lock.yaml', serializeLockfile(lock));
      const commit = t.commit(`hostile manifest: ${name}`);
      const before = snapshot(t.root);
      const refused = (err: string, where: string) => {
        expect(err).toMatch(/unsafe entry path in manifest/);
        expect(err).toContain(where);
        expect(err).toMatch(problem);
      };

      const pull = await cli('pull', '--remote', remote);
      expect(pull.code, 'pull').toBe(1);
      refused(pull.err, 'data/x');

      const get = await cli('registry', 'get', commit, '--out', 'fetched/model', '--remote', remote);
      expect(get.code, 'registry get').toBe(1);
      refused(get.err, 'out/model');

      await expect(openArtifact(t.repo, `data/x/${paths[0]}`)).rejects.toThrow(UnsafePathError);
      await expect(verifyRef(t.repo, commit)).rejects.toThrow(UnsafePathError);
      await expect(materializeModel(t.repo, { path: 'out/model', ...ref })).rejects.toThrow(UnsafePathError);
      expect(fs.existsSync(modelDir(t.repo, hash))).toBe(false);

      const expName = `hostile-${CASES.findIndex((c) => c[0] === name)}`;
      await writeExperiment(
        t.root,
        commit,
        { 'artifacts.lock.yaml': t.read('artifacts.lock.yaml'), 'params.yaml': 'train:\n  lr: 9\n' },
        { name: expName, kind: 'run', overrides: {}, metrics: {}, status: 'ok', created: '2026-01-01' },
      );
      t.write('artifacts.lock.yaml', cleanLock);
      const apply = await cli('exp', 'apply', expName);
      expect(apply.code, 'exp apply').toBe(1);
      // exp apply checks every artifact the experiment pins (tracked data first) before writing.
      refused(apply.err, 'data/x');
      expect(t.read('params.yaml')).not.toContain('lr: 9');
      expect(t.read('artifacts.lock.yaml')).toBe(cleanLock);

      // repro: the run-cache entry of `train` now restores the hostile manifest.
      const runs = path.join(t.repo.stateDir, 'runs');
      const trainEntry = fs
        .readdirSync(runs)
        .map((f) => path.join(runs, f))
        .find((f) => JSON.parse(fs.readFileSync(f, 'utf8')).stage === 'train')!;
      const original = fs.readFileSync(trainEntry, 'utf8');
      const entry = JSON.parse(original);
      entry.outs = [{ path: 'out/model', ...ref }];
      fs.writeFileSync(trainEntry, JSON.stringify(entry));
      fs.rmSync(t.repo.lockfilePath);
      try {
        await expect(runFixture(t)).rejects.toThrow(UnsafePathError);
      } finally {
        fs.writeFileSync(trainEntry, original);
        t.write('artifacts.lock.yaml', serializeLockfile(lock));
      }

      expect(fs.existsSync(ESCAPE)).toBe(false);
      expect(snapshot(t.root)).toEqual(before);
    },
    60_000,
  );
});
