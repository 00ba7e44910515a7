/**
 * `lockstep verify <ref>`: reproduce the model of a commit from scratch and compare hashes.
 * The commit is checked out in a temporary git worktree that shares this repository's object
 * cache and node_modules; its own code runs `repro --force` there (so the code, params and data
 * of that commit are what run), and every stage output hash is compared with the lockfile.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gitClient } from '../git-client.ts';
import { LockstepError } from '../errors.ts';
import { readLockfile, serializeLockfile } from '../lockfile.ts';
import { repoAt, type Repo } from '../repo.ts';
import type { Output } from '../output.ts';
import { checkoutArtifact } from '../store/checkout.ts';
import { ensureArtifacts } from '../store/availability.ts';
import { defaultRemote } from '../store/remote-config.ts';
import { resolveRef } from '../environment/refs.ts';
import { LOCKFILE } from './registry.ts';
import { modelOf } from '../environment/model.ts';
import { readLockfileAt } from '../environment/revision.ts';

export interface OutputComparison {
  stage: string;
  path: string;
  expected: string;
  actual?: string;
  match: boolean;
}

export interface VerifyResult {
  commit: string;
  model?: { expected: string; actual?: string; match: boolean };
  outputs: OutputComparison[];
  /** True when every output (and so the model) reproduced bit for bit. */
  reproducible: boolean;
  seconds: number;
}

export interface VerifyOptions {
  out?: Output;
  /** Extra arguments for `repro` in the worktree (e.g. `--pipeline <module>` in tests). */
  reproArgs?: string[];
  /** Keep the worktree for inspection. */
  keep?: boolean;
}

function run(
  cmd: string,
  args: string[],
  cwd: string,
  out?: Output,
): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out?.err(d.toString().trimEnd()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      out?.err(d.toString().trimEnd());
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

/** Reproduces `ref` in a temporary worktree and compares every stage output hash. */
export async function verifyRef(repo: Repo, ref: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const started = performance.now();
  const { commit } = await resolveRef(repo.root, ref);
  const expected = await readLockfileAt(repo.root, commit);
  if (!expected)
    throw new LockstepError(
      `${ref}: no ${LOCKFILE} at ${commit.slice(0, 8)}. Choose a commit that ran the pipeline.`,
    );
  const git = gitClient(repo.root);
  const base = await mkdtemp(path.join(os.tmpdir(), 'lockstep-verify-'));
  const dir = path.join(base, 'wt');
  try {
    await git.raw(['worktree', 'add', '--quiet', '--detach', dir, commit]);
    const wt = repoAt(dir);
    // Share the object cache (inputs tracked with `lockstep add` come from it) and the installed
    // packages; the worktree's own run-cache and hash state start empty.
    await mkdir(wt.stateDir, { recursive: true });
    await symlink(repo.cacheDir, wt.cacheDir, 'dir');
    const modules = path.join(repo.root, 'node_modules');
    if (existsSync(modules)) await symlink(modules, path.join(dir, 'node_modules'), 'dir');
    const data = Object.entries(expected.data).map(([p, v]) => ({ path: p, ...v }));
    await ensureArtifacts(repo, data, {
      remote: await defaultRemote(repo),
      out: options.out,
      what: `verify ${ref}`,
      fix: 'Pull the tracked data (lockstep pull) or push it from a clone that has it.',
    });
    for (const d of data) await checkoutArtifact(wt, d);
    // Start from no lockfile: every output must be produced by this run, so a stage that fails
    // shows up as missing instead of as the committed (expected) hash.
    await rm(wt.lockfilePath, { force: true });
    const bin = path.join(dir, 'bin', 'lockstep.mjs');
    // Declared inputs (a gate's baseline) replay as recorded: the environment branch may have
    // moved since, and the question is whether this commit's outputs follow from its inputs.
    const pin: string[] = [];
    if (Object.values(expected.stages).some((e) => e.inputs && Object.keys(e.inputs).length > 0)) {
      const pinFile = path.join(base, 'pinned.lock.yaml');
      await writeFile(pinFile, serializeLockfile(expected));
      pin.push('--pin-inputs', pinFile);
    }
    options.out?.err(`verify: reproducing ${commit.slice(0, 8)} in ${dir}`);
    const res = await run(
      process.execPath,
      [bin, 'repro', '--force', ...pin, ...(options.reproArgs ?? [])],
      dir,
      options.out,
    );
    if (res.code !== 0 && res.code !== 1) {
      throw new LockstepError(
        `verify ${ref}: repro failed in the worktree (${res.stderr.trim().split('\n').pop() ?? 'no output'}).`,
      );
    }
    const actual = readLockfile(wt);
    const outputs: OutputComparison[] = [];
    for (const [stage, entry] of Object.entries(expected.stages)) {
      for (const out of entry.outs) {
        const got = actual.stages[stage]?.outs.find((o) => o.path === out.path)?.hash;
        outputs.push({ stage, path: out.path, expected: out.hash, actual: got, match: got === out.hash });
      }
    }
    const expectedModel = modelOf(expected);
    const actualModel = modelOf(actual);
    const model = expectedModel
      ? {
          expected: expectedModel.hash,
          actual: actualModel?.hash,
          match: expectedModel.hash === actualModel?.hash,
        }
      : undefined;
    return {
      commit,
      model,
      outputs,
      reproducible: outputs.every((o) => o.match),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (!options.keep) {
      await git.raw(['worktree', 'remove', '--force', dir]).catch(() => undefined);
      await rm(base, { recursive: true, force: true });
      await git.raw(['worktree', 'prune']).catch(() => undefined);
    }
  }
}
