/**
 * registry: the registry commands over long histories, whole process as a user runs them.
 *
 * For 100, 1,000 and 10,000 model commits (a synthetic history built with `git fast-import`:
 * `dev` pins a new model per commit, `staging` merges every 5th commit of the older half, so it
 * has N/10 deploys, `prod` every 5th of those), each command is spawned `ROUNDS` times,
 * interleaved with its baselines, and the median kept:
 *
 * - baselines: `lockstep --help` (CLI start-up, which the registry cannot make cheaper) and a
 *   bare `git log --all --raw -- artifacts.lock.yaml` over the same history (the floor of
 *   reading the history at all). `*_above_help` is a command's median minus the start-up's.
 * - `list_cold`: `registry list` with no `.lockstep/lockfile-cache.json` (a fresh clone, CI);
 *   `list_warm`: again with the cache; `list_limit`: `registry list --limit 20`, cold.
 * - `show_cold` / `show_warm`: `registry show HEAD~(0.7 N)` (the environments that run the model
 *   now: reads that lockfile and each environment head's); `show_history_cold` / `_warm`: the
 *   same with `--history` (also walks each environment's history for earlier deploys);
 *   `lineage`: `lineage HEAD~(0.7 N)`. `*_vs_help` is a command's median over `--help`'s.
 * - `history_cold` / `history_warm`: `history staging` (N/10 deploys).
 * - `get_cold` / `get_warm`: `registry get <commit> --out <fresh dir>`, where the commit is a child
 *   of HEAD~(0.7 N) (outside every branch, so the other figures see the same history) whose
 *   lockfile pins a real five-file model held by the local cache (the synthetic models have no
 *   bytes). Cold: no `.lockstep/lockfile-cache.json`.
 * - `old_*`: the implementation this replaced (commit OLD_COMMIT, git processes per commit):
 *   `registry list` and `history staging` at 100 commits (ROUNDS runs), `registry list` at 1,000
 *   once (it takes tens of seconds per run).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildModelHistory } from '../test/support/model-history.ts';
import { parseLockfile, serializeLockfile } from '../lib/lockfile.ts';
import { repoAt } from '../lib/repo.ts';
import { commitArtifact } from '../lib/store/artifacts.ts';
import { PATHS } from '../lib/paths.ts';

/**
 * A commit off `base` (on no branch) whose lockfile pins a real model in `dir`'s local cache:
 * `registry get` needs bytes, which the synthetic history's models do not have.
 */
export async function realModelCommit(dir: string, base: string): Promise<string> {
  const git = (args: string[], env: Record<string, string> = {}, input?: string) =>
    execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env }, input }).trim();
  const modelDir = path.join(dir, PATHS.model);
  fs.mkdirSync(modelDir, { recursive: true });
  for (let i = 0; i < 5; i++)
    fs.writeFileSync(path.join(modelDir, `part${i}.bin`), `weights ${i}\n`.repeat(100));
  const model = await commitArtifact(repoAt(dir), PATHS.model);
  fs.rmSync(path.join(dir, 'out'), { recursive: true, force: true });
  const lock = parseLockfile(git(['show', `${base}:artifacts.lock.yaml`]));
  for (const entry of Object.values(lock.stages))
    entry.outs = entry.outs.map((o) => (o.path === PATHS.model ? model : o));
  const blob = git(['hash-object', '-w', '--stdin'], {}, serializeLockfile(lock));
  const index = { GIT_INDEX_FILE: path.join(dir, '.git', 'bench-get-index') };
  git(['read-tree', base], index);
  git(['update-index', '--cacheinfo', `100644,${blob},artifacts.lock.yaml`], index);
  const tree = git(['write-tree'], index);
  return git(['commit-tree', tree, '-p', base, '-m', 'pin a model with bytes'], {
    GIT_AUTHOR_NAME: 'Bench',
    GIT_AUTHOR_EMAIL: 'bench@example.com',
    GIT_COMMITTER_NAME: 'Bench',
    GIT_COMMITTER_EMAIL: 'bench@example.com',
  });
}

const ROOT = path.resolve(import.meta.dirname, '..');
/** History lengths; `BENCH_REGISTRY_SIZES=100,1000` measures fewer (a quick check of the bench). */
const SIZES = (process.env.BENCH_REGISTRY_SIZES ?? '100,1000,10000').split(',').map(Number);
const ROUNDS = 5;
/** The last commit with the per-commit registry reader. */
const OLD_COMMIT = 'c9b8d5e';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function run(cmd: string, args: string[], cwd: string): { seconds: number; stdout: string } {
  const t0 = performance.now();
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const seconds = (performance.now() - t0) / 1000;
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${res.status}): ${res.stderr}`);
  return { seconds, stdout: res.stdout };
}

function lockstep(cli: string, dir: string, ...args: string[]) {
  return run(process.execPath, [cli, ...args], dir);
}

/** The CLI as of OLD_COMMIT, unpacked beside the history, sharing this checkout's node_modules. */
function oldCli(tmp: string): string {
  const dir = path.join(tmp, 'old');
  fs.mkdirSync(dir);
  const tar = execFileSync('git', ['archive', OLD_COMMIT, 'bin', 'lib', 'stages', 'package.json'], {
    cwd: ROOT,
    maxBuffer: 256 * 1024 * 1024,
  });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return path.join(dir, 'bin', 'lockstep.mjs');
}

const round3 = (x: number) => Number(x.toFixed(3));

export default async function registryBench(): Promise<Record<string, number | string>> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-registry-'));
  const cli = path.join(ROOT, 'bin', 'lockstep.mjs');
  const figures: Record<string, number | string> = {
    load_average_1m_start: Number(os.loadavg()[0]!.toFixed(1)),
  };
  try {
    const old = oldCli(tmp);
    for (const n of SIZES) {
      const dir = path.join(tmp, `h${n}`);
      const t0 = performance.now();
      const built = buildModelHistory(dir, { commits: n });
      figures[`build_seconds_${n}`] = round3((performance.now() - t0) / 1000);
      const cache = path.join(dir, '.lockstep', 'lockfile-cache.json');
      const cold = () => fs.rmSync(cache, { force: true });
      const back = `HEAD~${Math.floor(n * 0.7)}`;
      // Correctness first: every model commit is listed, and staging has its N/10 deploys.
      const listed = JSON.parse(lockstep(cli, dir, 'registry', 'list', '--json').stdout) as unknown[];
      if (listed.length !== n) throw new Error(`registry list: ${listed.length} entries, expected ${n}`);
      const hist = JSON.parse(lockstep(cli, dir, 'history', 'staging', '--json').stdout) as {
        changes: unknown[];
      };
      if (hist.changes.length !== built.staging.length)
        throw new Error(`history staging: ${hist.changes.length} changes, expected ${built.staging.length}`);

      const getCommit = await realModelCommit(dir, back);
      // The old implementation reads today's promotion policies, which may hold keys it predates.
      let oldWorks = n <= 1000;
      if (oldWorks) {
        try {
          lockstep(old, dir, 'registry', 'list', '--limit', '1');
        } catch (err) {
          oldWorks = false;
          figures.old_error = (err as Error).message.split('\n')[0]!.slice(-240);
        }
      }
      const outDir = (name: string) => fs.mkdtempSync(path.join(tmp, `get-${name}-`));
      const times: Record<string, number[]> = {};
      const time = (name: string, fn: () => { seconds: number }) => (times[name] ??= []).push(fn().seconds);
      for (let r = 0; r < ROUNDS; r++) {
        time('help', () => lockstep(cli, dir, '--help'));
        time('git_log', () =>
          run(
            'git',
            ['log', '--all', '--format=%H', '--raw', '--no-abbrev', '--', 'artifacts.lock.yaml'],
            dir,
          ),
        );
        cold();
        time('list_cold', () => lockstep(cli, dir, 'registry', 'list'));
        time('list_warm', () => lockstep(cli, dir, 'registry', 'list'));
        cold();
        time('list_limit', () => lockstep(cli, dir, 'registry', 'list', '--limit', '20'));
        cold();
        time('show_cold', () => lockstep(cli, dir, 'registry', 'show', back));
        time('show_warm', () => lockstep(cli, dir, 'registry', 'show', back));
        time('lineage', () => lockstep(cli, dir, 'lineage', back));
        cold();
        time('show_history_cold', () => lockstep(cli, dir, 'registry', 'show', back, '--history'));
        time('show_history_warm', () => lockstep(cli, dir, 'registry', 'show', back, '--history'));
        cold();
        time('get_cold', () => lockstep(cli, dir, 'registry', 'get', getCommit, '--out', outDir('cold')));
        time('get_warm', () => lockstep(cli, dir, 'registry', 'get', getCommit, '--out', outDir('warm')));
        cold();
        time('history_cold', () => lockstep(cli, dir, 'history', 'staging'));
        time('history_warm', () => lockstep(cli, dir, 'history', 'staging'));
        if (n === 100 && oldWorks) {
          time('old_list', () => lockstep(old, dir, 'registry', 'list'));
          time('old_history', () => lockstep(old, dir, 'history', 'staging'));
        }
      }
      if (n === 1000 && oldWorks) time('old_list', () => lockstep(old, dir, 'registry', 'list'));
      const help = median(times.help!);
      for (const [name, xs] of Object.entries(times)) {
        const m = median(xs);
        figures[`${name}_seconds_${n}`] = round3(m);
        if (name !== 'help') {
          figures[`${name}_above_help_seconds_${n}`] = round3(m - help);
          figures[`${name}_vs_help_${n}`] = round3(m / help);
        }
      }
      figures[`list_warm_vs_git_log_${n}`] = round3(median(times.list_warm!) / median(times.git_log!));
      if (times.old_list)
        figures[`old_list_vs_list_cold_${n}`] = round3(median(times.old_list) / median(times.list_cold!));
      figures[`staging_deploys_${n}`] = built.staging.length;
      fs.rmSync(dir, { recursive: true, force: true });
    }
    figures.rounds = ROUNDS;
    figures.old_commit = OLD_COMMIT;
    figures.cores = os.availableParallelism();
    figures.load_average_1m = Number(os.loadavg()[0]!.toFixed(1));
    return figures;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
