import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { cliIn, createExperimentRepo, linkModules, PIPE, showAt } from './helpers.ts';

const PARAMS = 'data:\n  seed: 1\ntrain:\n  lr: 0.01\n  epochs: 3\n';
let a: TmpRepo;
let dir: string;
let bare: string;
let b: string;
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

/** Points a clone at the shared artifact remote (a local directory). */
function useRemote(root: string, remote: string): void {
  fs.mkdirSync(path.join(root, '.lockstep'), { recursive: true });
  fs.writeFileSync(
    path.join(root, '.lockstep', 'config.yaml'),
    `remote: shared\nremotes:\n  shared:\n    url: ${remote}\n`,
  );
}

beforeEach(async () => {
  a = await createExperimentRepo(PARAMS);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-share-'));
  bare = path.join(dir, 'team.git');
  git(dir, 'init', '-q', '--bare', '-b', 'main', bare);
  git(a.root, 'remote', 'add', 'origin', bare);
  git(a.root, 'push', '-q', 'origin', 'main');
  b = path.join(dir, 'b');
  git(dir, 'clone', '-q', bare, b);
  git(b, 'config', 'user.name', 'B');
  git(b, 'config', 'user.email', 'b@example.com');
  linkModules(b);
  useRemote(a.root, path.join(dir, 'artifacts'));
  useRemote(b, path.join(dir, 'artifacts'));
  const r = await cliIn(a.root, 'exp', 'run', '-S', 'train.lr=0.02', '--name', 'lr-02', ...PIPE);
  expect(r.code, r.err).toBe(0);
});

afterEach(async () => {
  await a.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('exp push and pull', () => {
  it('exp push then exp pull moves an experiment and its artifacts between two clones; apply works there', async () => {
    const pushed = JSON.parse((await cliIn(a.root, 'exp', 'push', 'origin', '--json')).out);
    expect(pushed.experiments).toEqual(['lr-02']);
    expect(pushed.transferred).toBeGreaterThan(0);
    expect(git(bare, 'rev-parse', 'refs/exps/lr-02')).toBe(git(a.root, 'rev-parse', 'refs/exps/lr-02'));
    // Only what the remote lacks moves.
    const again = JSON.parse((await cliIn(a.root, 'exp', 'push', 'origin', 'lr-02', '--json')).out);
    expect(again.transferred).toBe(0);

    const pulled = await cliIn(b, 'exp', 'pull', 'origin', '--json');
    expect(pulled.code, pulled.err).toBe(0);
    expect(JSON.parse(pulled.out).transferred).toBeGreaterThan(0);
    const show = JSON.parse((await cliIn(b, 'exp', 'show', '--json')).out);
    const row = show.rows.find((r: { name: string }) => r.name === 'lr-02');
    expect(row.origin).toBe('origin');
    expect(row.metrics.accuracy).toBeCloseTo(0.9, 10);
    expect(JSON.parse((await cliIn(a.root, 'exp', 'show', '--json')).out).rows[2].origin).toBe('local');

    // b never ran the pipeline: every output comes from what the pull brought into its cache.
    fs.rmSync(path.join(dir, 'artifacts'), { recursive: true });
    const applied = await cliIn(b, 'exp', 'apply', 'lr-02');
    expect(applied.code, applied.err).toBe(0);
    expect((await cliIn(a.root, 'exp', 'apply', 'lr-02')).code).toBe(0);
    expect(filesUnder(path.join(b, 'out'))).toEqual(filesUnder(path.join(a.root, 'out')));
    expect(filesUnder(path.join(b, 'out'))['model/card.json']).toBe(JSON.stringify({ lr: 0.02 }));
    const status = JSON.parse((await cliIn(b, 'status', ...PIPE, '--json')).out);
    expect(status.missingLocal).toEqual([]);
    expect(status.stale).toEqual([]);
  });

  it('exp pull refuses to replace a local experiment of the same name unless --force', async () => {
    expect((await cliIn(a.root, 'exp', 'push', 'origin')).code).toBe(0);
    const local = await cliIn(b, 'exp', 'run', '-S', 'train.lr=0.03', '--name', 'lr-02', ...PIPE);
    expect(local.code, local.err).toBe(0);
    const before = git(b, 'rev-parse', 'refs/exps/lr-02');
    const refused = await cliIn(b, 'exp', 'pull', 'origin', 'lr-02');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/local experiments differ from origin's "lr-02"/);
    expect(git(b, 'rev-parse', 'refs/exps/lr-02')).toBe(before);
    expect((await cliIn(b, 'exp', 'pull', 'origin', 'lr-02', '--force')).code).toBe(0);
    expect(git(b, 'rev-parse', 'refs/exps/lr-02')).toBe(git(a.root, 'rev-parse', 'refs/exps/lr-02'));
  });

  it("exp push refuses to replace another clone's experiment of the same name unless --force; re-pushing your own is fine", async () => {
    expect((await cliIn(a.root, 'exp', 'push', 'origin')).code).toBe(0);
    // A re-runs its own experiment: the remote's ref is one A pushed, so replacing it is fine.
    expect((await cliIn(a.root, 'exp', 'run', '-S', 'train.lr=0.04', '--name', 'lr-02', ...PIPE)).code).toBe(
      0,
    );
    const again = await cliIn(a.root, 'exp', 'push', 'origin', 'lr-02');
    expect(again.code, again.err).toBe(0);
    const aCommit = git(a.root, 'rev-parse', 'refs/exps/lr-02');
    expect(git(bare, 'rev-parse', 'refs/exps/lr-02')).toBe(aCommit);

    // B runs an experiment it happens to name the same, and pushes it.
    expect((await cliIn(b, 'exp', 'run', '-S', 'train.lr=0.03', '--name', 'lr-02', ...PIPE)).code).toBe(0);
    const refused = await cliIn(b, 'exp', 'push', 'origin');
    expect(refused.code).toBe(1);
    expect(refused.err.trim().split('\n').pop()).toMatch(
      /^lockstep: exp push: origin holds other experiments of the same name "lr-02" .*--force to replace them; nothing was pushed\.$/,
    );
    expect(git(bare, 'rev-parse', 'refs/exps/lr-02')).toBe(aCommit);

    const forced = await cliIn(b, 'exp', 'push', 'origin', '--force');
    expect(forced.code, forced.err).toBe(0);
    expect(git(bare, 'rev-parse', 'refs/exps/lr-02')).toBe(git(b, 'rev-parse', 'refs/exps/lr-02'));
    // Now A's push is the one that would replace a teammate's.
    expect((await cliIn(a.root, 'exp', 'push', 'origin', 'lr-02')).code).toBe(1);
  });

  it('exp pull and exp push wait for the repository lock, so a gc in between cannot collect what they move', async () => {
    expect((await cliIn(a.root, 'exp', 'push', 'origin')).code).toBe(0);
    const held = {
      pid: process.pid,
      hostname: os.hostname(),
      command: 'gc',
      started: new Date().toISOString(),
    };
    fs.mkdirSync(path.join(b, '.lockstep'), { recursive: true });
    fs.writeFileSync(path.join(b, '.lockstep', 'lock'), JSON.stringify(held));
    const before = process.env.LOCKSTEP_LOCK_TIMEOUT_MS;
    process.env.LOCKSTEP_LOCK_TIMEOUT_MS = '200';
    try {
      for (const verb of ['pull', 'push']) {
        const r = await cliIn(b, 'exp', verb, 'origin');
        expect(r.code, verb).toBe(1);
        expect(r.err, verb).toMatch(
          new RegExp(`\\.lockstep/lock: held by lockstep pid ${process.pid} \\(gc\\)`),
        );
      }
      expect(git(b, 'for-each-ref', 'refs/exps/')).toBe('');
    } finally {
      if (before === undefined) delete process.env.LOCKSTEP_LOCK_TIMEOUT_MS;
      else process.env.LOCKSTEP_LOCK_TIMEOUT_MS = before;
      fs.rmSync(path.join(b, '.lockstep', 'lock'));
    }
    expect((await cliIn(b, 'exp', 'pull', 'origin')).code).toBe(0);
  });

  it('exp pull names experiments whose artifacts the remote lacks', async () => {
    expect((await cliIn(a.root, 'exp', 'push', 'origin')).code).toBe(0);
    fs.rmSync(path.join(dir, 'artifacts'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'artifacts'));
    const r = await cliIn(b, 'exp', 'pull', 'origin');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/exp pull: outputs missing from .* "lr-02: .*out\/model/);
  });

  it('exp show lists experiments of HEAD by default, every base with --all-commits, one base with --rev', async () => {
    const first = a.git('rev-parse', 'HEAD');
    a.write('code/report.txt', '2');
    a.commit('report v2');
    const names = async (...args: string[]) =>
      JSON.parse((await cliIn(a.root, 'exp', 'show', '--json', ...args)).out)
        .rows.filter((r: { kind: string }) => r.kind === 'run')
        .map((r: { name: string }) => r.name);
    expect(await names()).toEqual([]);
    expect(await names('--all-commits')).toEqual(['lr-02']);
    expect(await names('--rev', first.slice(0, 8))).toEqual(['lr-02']);
    expect(showAt(a.root, 'refs/exps/lr-02:params.yaml')).toContain('lr: 0.02');
  });
});

/** Every file under `root`: relative path → content. */
function filesUnder(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of fs.readdirSync(root, { recursive: true }) as string[]) {
    const abs = path.join(root, rel);
    if (fs.statSync(abs).isFile()) out[rel.split(path.sep).join('/')] = fs.readFileSync(abs, 'utf8');
  }
  return out;
}
