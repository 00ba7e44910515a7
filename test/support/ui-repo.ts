/**
 * A repository for the dashboard's tests and bench: a model history (`buildModelHistory`: dev,
 * staging and prod branches), experiments on top of dev's head, a local endpoint mid-canary on
 * prod with its deployment records, and a monitoring report for prod. With `hostile`, every
 * place a string from git reaches a page carries markup that would run if it were not escaped:
 * a commit subject, a branch name, a param value, a canary reason.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildModelHistory, modelHash, syntheticLockfileWriter } from './model-history.ts';
import { writeExperiment } from '../../lib/experiments/store.ts';
import { setParamsValues } from '../../lib/experiments/params-edit.ts';
import { recordDeployment } from '../../lib/promotion/records.ts';
import { endpointStatePath, writeEndpointState } from '../../lib/serving/endpoint-state.ts';
import { computeMonitorReport, DEFAULT_THRESHOLDS } from '../../lib/monitoring/monitor.ts';
import { createRng } from '../../lib/rng.ts';
import { repoAt } from '../../lib/repo.ts';

export interface UiRepoOptions {
  /** Model commits on dev (registry entries; staging and prod merge some of them). */
  models: number;
  /** Experiments: written one by one through writeExperiment when few, by fast-import when many. */
  experiments: number;
  /** Put executable-looking markup in a subject, a branch, a param and a canary reason. */
  hostile?: boolean;
  /** Promotion merges: staging takes every n-th dev model, prod every n-th staging one (default 2). */
  promoteEvery?: number;
}

/** Markup that runs if a page inserts it unescaped: each sets a flag the tests look for. */
export const HOSTILE = {
  subject: `fix <script>window.__xss='subject'</script><img src=x onerror="window.__xss='img'">`,
  branch: `xss/<img/src=x/onerror=window.__xss=1>`,
  param: `</script><script>window.__xss='param'</script><!--`,
  reason: `<svg/onload=window.__xss='reason'>`,
};

export interface UiRepo {
  dir: string;
  /** Dev commits, oldest first (each a registry entry). */
  dev: string[];
  experiments: string[];
}

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 28 }).trim();
}

function fastImportExperiments(dir: string, base: string, params: string, baseLock: string, n: number) {
  const data = (s: string) => `data ${Buffer.byteLength(s)}\n${s}\n`;
  const when = 1_800_000_000;
  const parts: string[] = [];
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `exp-${i}`;
    names.push(name);
    const lr = Number((0.0005 + (i % 50) * 0.0001).toFixed(4));
    const units = 32 + (i % 4) * 32;
    const accuracy = Number((0.6 + ((i * 37) % 300) / 1000).toFixed(4));
    const meta = {
      name,
      kind: 'run',
      overrides: { 'train.lr': lr, 'train.units': units },
      metrics: {
        accuracy,
        f1_macro: Number((accuracy - 0.02).toFixed(4)),
        mcc: Number((accuracy - 0.1).toFixed(4)),
      },
      status: i % 9 === 0 ? 'gate-failed' : 'ok',
      created: new Date((when + i) * 1000).toISOString(),
    };
    parts.push(
      `commit refs/exps/${name}\n`,
      `committer ML Engineer <ml@example.com> ${when + i} +0000\n`,
      data(`exp: ${name}\n\n${JSON.stringify(meta, null, 2)}\n`),
      `from ${base}\n`,
      `M 100644 inline params.yaml\n`,
      data(setParamsValues(params, { 'train.lr': lr, 'train.epochs': 10 + (i % 7) })),
      `M 100644 inline artifacts.lock.yaml\n`,
      // The base's lockfile: metrics come from the metadata, as `exp run` records them, and the
      // registry stays the model history (an unchanged lockfile is no new entry).
      data(baseLock),
      '\n',
    );
  }
  execFileSync('git', ['fast-import', '--quiet'], { cwd: dir, input: parts.join(''), maxBuffer: 1 << 28 });
  return names;
}

/** Builds the repository into the new directory `dir`. */
export async function buildUiRepo(dir: string, options: UiRepoOptions): Promise<UiRepo> {
  const history = buildModelHistory(dir, {
    commits: options.models,
    stagingEvery: options.promoteEvery ?? 2,
    prodEvery: options.promoteEvery ?? 2,
  });
  const lock = syntheticLockfileWriter();
  const dev = [...history.dev];
  const repo = repoAt(dir);
  if (options.hostile) {
    fs.writeFileSync(path.join(dir, 'artifacts.lock.yaml'), lock(options.models));
    git(dir, 'add', 'artifacts.lock.yaml');
    git(dir, 'commit', '-q', '-m', HOSTILE.subject);
    dev.push(git(dir, 'rev-parse', 'HEAD'));
    git(dir, 'branch', HOSTILE.branch);
  }
  const head = git(dir, 'rev-parse', 'HEAD');
  const params = fs.readFileSync(path.join(dir, 'params.yaml'), 'utf8');
  let experiments: string[] = [];
  if (options.experiments > 20) {
    const baseLock = fs.readFileSync(path.join(dir, 'artifacts.lock.yaml'), 'utf8');
    experiments = fastImportExperiments(dir, head, params, baseLock, options.experiments);
  } else {
    for (let i = 0; i < options.experiments; i++) {
      const name = `exp-${i}`;
      const accuracy = 0.7 + i * 0.03;
      const values: Record<string, unknown> = { 'train.lr': 0.001 * (i + 1), 'train.epochs': 10 + i };
      if (options.hostile && i === 0) values['train.note'] = HOSTILE.param;
      await writeExperiment(
        dir,
        head,
        { 'params.yaml': setParamsValues(params, values), 'artifacts.lock.yaml': lock(10_000 + i) },
        {
          name,
          kind: 'run',
          overrides: values,
          metrics: { accuracy, f1_macro: accuracy - 0.02, mcc: accuracy - 0.1 },
          status: 'ok',
          created: new Date(Date.UTC(2026, 10, 1, 12, i)).toISOString(),
        },
      );
      experiments.push(name);
    }
  }
  // prod mid-canary: the stable model at 75%, the candidate (dev's newest) at 25%.
  const prodHead = history.prod.at(-1);
  const stable = prodHead ? modelHash(prodHead.devIndex) : modelHash(0);
  const candidate = modelHash(options.models - 1);
  const model = (hash: string, commit?: string) => ({
    path: 'out/model',
    hash,
    size: 310_000,
    nfiles: 5,
    dir: true,
    ...(commit ? { commit } : {}),
  });
  const reason = options.hostile ? HOSTILE.reason : 'error rate 0.000 ≤ 0.010, p99 12 ms ≤ 250 ms';
  await writeEndpointState(endpointStatePath(dir, 'prod'), {
    version: 1,
    env: 'prod',
    nextId: 3,
    deployedModels: [
      { id: '1', model: model(stable, prodHead?.commit), deployedAt: '2026-11-01T10:00:00.000Z' },
      { id: '2', model: model(candidate, history.dev.at(-1)), deployedAt: '2026-11-02T10:00:00.000Z' },
    ],
    trafficSplit: { '1': 75, '2': 25 },
    canary: {
      candidateHash: candidate,
      candidate: '2',
      stable: '1',
      stepIndex: 1,
      phase: 'progressing',
      stepStartedAt: '2026-11-02T11:00:00.000Z',
      message: `step 2 of 4 holding: 12 of 50 requests. ${reason}`,
    },
    updatedAt: '2026-11-02T11:00:00.000Z',
  });
  const commit = history.dev.at(-1)!;
  for (const [status, step, percent, detail] of [
    ['canary_started', 1, 10, 'first step'],
    ['canary_step', 2, 25, `analysis passed: ${reason}`],
    ['canary_hold', 2, 25, 'not enough requests yet: 12 of 50'],
  ] as const)
    await recordDeployment(repo, {
      env: 'prod',
      commit,
      model: candidate,
      source: 'canary',
      status,
      step,
      percent,
      detail,
    });
  // A monitoring report of prod, as `lockstep monitor --env prod` writes it.
  const rng = createRng(7);
  const now = new Date('2026-11-20T12:00:00Z');
  const names = ['mfcc_mean_0', 'mfcc_mean_1'];
  const edges = [0, 0.25, 0.5, 0.75, 1];
  const entries = Array.from({ length: 400 }, (_, k) => ({
    time: new Date(now.getTime() - (k + 1) * 180_000).toISOString(),
    env: 'prod',
    status: 'ok' as const,
    label: k % 3 === 0 ? 'happy' : 'sad',
    // The second feature drifts upwards in the recent window.
    summary: [rng.next(), k < 200 ? 0.5 + rng.next() / 2 : rng.next()],
    latencyMs: 5 + (k % 7),
  }));
  const report = computeMonitorReport(
    'prod',
    entries,
    {
      featureNames: names,
      histograms: Object.fromEntries(names.map((n) => [n, { edges, counts: [0, 100, 100, 100, 100, 0] }])),
      labelCounts: { happy: 50, sad: 50 },
    },
    { ...DEFAULT_THRESHOLDS, window_hours: 10, min_samples: 40 },
    now,
  );
  const out = path.join(dir, 'out', 'monitor', 'prod');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  return { dir, dev, experiments };
}
