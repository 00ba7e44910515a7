/**
 * A long model history, built in one `git fast-import` stream (thousands of commits in a second
 * or two): `dev` gets one commit per trained model, each pinning a different model hash in a
 * demo-shaped `artifacts.lock.yaml`; `staging` and `prod` are first-parent chains of promotion
 * merges, the way `lockstep promote` leaves them. Used by the registry tests and
 * `npm run bench -- registry`.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { serializeLockfile } from '../../lib/lockfile.ts';
import type { ArtifactRef, Lockfile } from '../../lib/types.ts';

const PROJECT = path.resolve(import.meta.dirname, '../..');

export interface ModelHistoryOptions {
  /** Model commits on `dev`. */
  commits: number;
  /** `staging` merges every `stagingEvery`-th dev commit of the older half (default 5). */
  stagingEvery?: number;
  /** `prod` merges every `prodEvery`-th staging deploy (default 5). */
  prodEvery?: number;
  /** Seed mixed into every hash, so two histories share no model (default ''). */
  seed?: string;
}

export interface ModelHistory {
  /** Dev commit ids, oldest first (index i pins `modelHash(i)`). */
  dev: string[];
  /** Staging merge commits, oldest first, and the dev index each one deployed. */
  staging: { commit: string; devIndex: number }[];
  prod: { commit: string; devIndex: number }[];
  /** The commit holding promotion/*.yaml and params.yaml, with no lockfile. */
  root: string;
}

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The model hash dev commit `i` pins. */
export function modelHash(i: number, seed = ''): string {
  return sha(`model ${seed} ${i}`);
}

function ref(p: string, hash: string, size: number, nfiles: number, dir = true): ArtifactRef {
  return { path: p, hash, size, nfiles, ...(dir ? { dir: true } : {}) };
}

/** The values that vary between the synthetic lockfiles: hashes and numbers. */
interface Varying {
  demo: string;
  manifest: string;
  ingest: string;
  validate: string;
  features: string;
  model: string;
  train: string;
  evaluation: string;
  gate: string;
  dataSeed: number;
  demoSize: number;
  modelSize: number;
  epochs: number;
  trainSeed: number;
  accuracy: number;
  f1: number;
  mcc: number;
  loss: number;
  passed: number;
}

function varyingOf(i: number, seed: string): Varying {
  const data = Math.floor(i / 50);
  const acc = 0.7 + ((i * 37) % 200) / 1000;
  return {
    demo: sha(`demo ${seed} ${data}`),
    manifest: sha(`manifest ${seed} ${data}`),
    ingest: sha(`ingest ${seed} ${data}`),
    validate: sha(`validate ${seed} ${data}`),
    features: sha(`features ${seed} ${data}`),
    model: modelHash(i, seed),
    train: sha(`train ${seed} ${i}`),
    evaluation: sha(`eval ${seed} ${i}`),
    gate: sha(`gate ${seed} ${i}`),
    dataSeed: data,
    demoSize: 2_400_000 + data,
    modelSize: 310_000 + (i % 997),
    epochs: 10 + (i % 30),
    trainSeed: i,
    accuracy: acc,
    f1: acc - 0.01,
    mcc: acc - 0.1,
    loss: 1 - acc,
    passed: acc >= 0.72 ? 1 : 0,
  };
}

function lockfileOf(v: Varying): Lockfile {
  const demo = ref('out/data/demo', v.demo, v.demoSize, 140);
  const manifest = ref('out/ingest/manifest.json', v.manifest, 48_000, 1, false);
  const ingest = ref('out/ingest', v.ingest, 52_000, 2);
  const validate = ref('out/validate', v.validate, 9_000, 3);
  const features = ref('out/features', v.features, 1_900_000, 6);
  const model = ref('out/model', v.model, v.modelSize, 5);
  const train = ref('out/train', v.train, 14_000, 2);
  const evaluation = ref('out/eval', v.evaluation, 120_000, 9);
  const gate = ref('out/gate', v.gate, 400, 1);
  const code = (stage: string) => sha(`code ${stage}`);
  return {
    schema: 1,
    data: {},
    stages: {
      data: {
        code: code('data'),
        deps: [],
        params: { 'data.clips': 140, 'data.seed': v.dataSeed },
        outs: [demo],
      },
      ingest: { code: code('ingest'), deps: [demo], params: { 'ingest.test_fraction': 0.2 }, outs: [ingest] },
      validate: { code: code('validate'), deps: [manifest], params: {}, outs: [validate] },
      featurize: {
        code: code('featurize'),
        deps: [demo, manifest],
        params: { 'featurize.n_mfcc': 20, 'featurize.frame': 512, 'featurize.hop': 256 },
        outs: [features],
      },
      train: {
        code: code('train'),
        deps: [features],
        params: { 'train.epochs': v.epochs, 'train.lr': 0.001, 'train.seed': v.trainSeed },
        outs: [model, train],
      },
      evaluate: {
        code: code('evaluate'),
        deps: [features, model],
        params: {},
        outs: [evaluation],
        metrics: { accuracy: v.accuracy, f1_macro: v.f1, mcc: v.mcc, loss: v.loss },
      },
      gate: {
        code: code('gate'),
        deps: [evaluation],
        params: { 'gate.min_accuracy': 0.7 },
        outs: [gate],
        metrics: { passed: v.passed },
      },
    },
  };
}

/** A demo-shaped lockfile (seven stages) pinning model `i`; data changes every 50 models. */
export function syntheticLockfile(i: number, seed = ''): Lockfile {
  return lockfileOf(varyingOf(i, seed));
}

/**
 * `serializeLockfile(syntheticLockfile(i, seed))`, fast: the lockfile is serialized once with a
 * sentinel in every varying slot, and each text is that template with the sentinels replaced
 * (serializing ten thousand lockfiles one by one takes longer than importing them into git).
 */
export function syntheticLockfileWriter(seed = ''): (i: number) => string {
  const keys = Object.keys(varyingOf(0, seed)) as (keyof Varying)[];
  const sentinels = {} as Record<keyof Varying, string | number>;
  const slots = new Map<string, keyof Varying>();
  keys.forEach((k, n) => {
    const isHash = typeof varyingOf(0, seed)[k] === 'string';
    const token = isHash ? sha(`slot ${n}`) : 987_650_000 + n;
    sentinels[k] = token;
    slots.set(String(token), k);
  });
  const template = serializeLockfile(lockfileOf(sentinels as unknown as Varying));
  const pattern = new RegExp([...slots.keys()].join('|'), 'g');
  const write = (i: number) => {
    const v = varyingOf(i, seed);
    return template.replace(pattern, (m) => String(v[slots.get(m)!]));
  };
  // The shortcut must give exactly what the serializer gives.
  for (const i of [0, 1, 49, 50, 997])
    if (write(i) !== serializeLockfile(syntheticLockfile(i, seed)))
      throw new Error(`synthetic lockfile template differs from serializeLockfile at ${i}`);
  return write;
}

/** Writes one fast-import `data` command. */
function data(text: string): string {
  return `data ${Buffer.byteLength(text)}\n${text}\n`;
}

/**
 * Builds the history into the (new, empty) git repository at `dir` and checks out `dev`.
 * Commit times are one minute apart, newest last.
 */
export function buildModelHistory(dir: string, options: ModelHistoryOptions): ModelHistory {
  const n = options.commits;
  const seed = options.seed ?? '';
  const stagingEvery = options.stagingEvery ?? 5;
  const prodEvery = options.prodEvery ?? 5;
  execFileSync('git', ['init', '-q', '-b', 'dev', dir]);
  for (const [k, v] of [
    ['user.name', 'ML Engineer'],
    ['user.email', 'ml@example.com'],
    ['commit.gpgsign', 'false'],
  ])
    execFileSync('git', ['config', k, v], { cwd: dir });
  const start = 1_700_000_000;
  let time = start;
  let mark = 0;
  const chunks: string[] = [];
  const commit = (branch: string, message: string, body: string, from?: number, merge?: number) => {
    mark++;
    time += 60;
    chunks.push(
      `commit refs/heads/${branch}\nmark :${mark}\n` +
        `author ML Engineer <ml@example.com> ${time} +0000\n` +
        `committer ML Engineer <ml@example.com> ${time} +0000\n` +
        data(message) +
        (from ? `from :${from}\n` : '') +
        (merge ? `merge :${merge}\n` : '') +
        body,
    );
    return mark;
  };
  const files: string[] = [];
  for (const env of ['dev', 'staging', 'prod'])
    files.push(
      `M 100644 inline promotion/${env}.yaml\n${data(fs.readFileSync(path.join(PROJECT, 'promotion', `${env}.yaml`), 'utf8'))}`,
    );
  files.push(
    `M 100644 inline params.yaml\n${data(fs.readFileSync(path.join(PROJECT, 'params.yaml'), 'utf8'))}`,
  );
  const rootMark = commit('dev', 'initial layout', files.join(''));
  const text = syntheticLockfileWriter(seed);
  const lockBlob = (i: number) => `M 100644 inline artifacts.lock.yaml\n${data(text(i))}`;
  const devMarks: number[] = [];
  let previous = rootMark;
  for (let i = 0; i < n; i++) {
    previous = commit('dev', `train model ${i}`, lockBlob(i), previous);
    devMarks.push(previous);
  }
  // Promotion merges: the merge's tree is the promoted commit's tree, as `promote` makes it.
  const stagingIdx: number[] = [];
  for (let i = stagingEvery - 1; i < Math.ceil(n / 2); i += stagingEvery) stagingIdx.push(i);
  const stagingMarks: number[] = [];
  previous = rootMark;
  for (const i of stagingIdx) {
    previous = commit('staging', `promote model ${i} to staging`, lockBlob(i), previous, devMarks[i]);
    stagingMarks.push(previous);
  }
  const prodIdx = stagingIdx.filter((_, k) => k % prodEvery === prodEvery - 1);
  const prodMarks: number[] = [];
  previous = rootMark;
  for (const i of prodIdx) {
    const s = stagingMarks[stagingIdx.indexOf(i)]!;
    previous = commit('prod', `promote model ${i} to prod`, lockBlob(i), previous, s);
    prodMarks.push(previous);
  }
  const marksFile = path.join(dir, '.git', 'lockstep-marks');
  execFileSync('git', ['fast-import', '--quiet', `--export-marks=${marksFile}`], {
    cwd: dir,
    input: chunks.join(''),
    maxBuffer: 1 << 30,
  });
  const marks = new Map<number, string>();
  for (const line of fs.readFileSync(marksFile, 'utf8').split('\n')) {
    const m = /^:(\d+) ([0-9a-f]+)$/.exec(line);
    if (m) marks.set(Number(m[1]), m[2]!);
  }
  fs.rmSync(marksFile);
  execFileSync('git', ['checkout', '-q', '-f', 'dev'], { cwd: dir });
  const id = (m: number) => marks.get(m)!;
  return {
    root: id(rootMark),
    dev: devMarks.map(id),
    staging: stagingMarks.map((m, k) => ({ commit: id(m), devIndex: stagingIdx[k]! })),
    prod: prodMarks.map((m, k) => ({ commit: id(m), devIndex: prodIdx[k]! })),
  };
}
