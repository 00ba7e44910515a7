import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRng } from '../../lib/rng.ts';
import { MedianPruner } from '../../lib/tune/pruner.ts';
import { randomSampler, tpeSampler, type CompletedTrial } from '../../lib/tune/samplers.ts';
import { runStudy, type StudyConfig, type TrialExecutor } from '../../lib/tune/tuner.ts';
import { runTrial, speakerFolds, type TrainParams } from '../../lib/tune/trial.ts';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { writeFeatureFixture } from '../ml/model-fixtures.ts';
import { createTmpRepo } from '../support/tmp-repo.ts';

describe('samplers', () => {
  const space = { 'train.lr': { type: 'float' as const, low: 1e-4, high: 1, log: true } };
  /** A 1-D objective with its minimum at lr = 0.01. */
  const loss = (lr: number) => (Math.log10(lr) + 2) ** 2;

  function search(sampler: typeof randomSampler, seed: number, n = 30): number {
    const rng = createRng(seed);
    const history: CompletedTrial[] = [];
    for (let i = 0; i < n; i++) {
      const p = sampler.suggest(space, history, rng);
      history.push({ params: p, loss: loss(Number(p['train.lr'])) });
    }
    return Math.min(...history.map((h) => h.loss));
  }

  it('tpeSampler finds a better optimum than random search on average over 10 seeds', () => {
    let tpe = 0;
    let rnd = 0;
    for (let s = 1; s <= 10; s++) {
      tpe += search(tpeSampler(), s);
      rnd += search(randomSampler, s);
    }
    expect(tpe).toBeLessThan(rnd);
  });

  it('samplers are deterministic for a seed and respect ranges and choices', () => {
    const full = {
      'train.lr': { type: 'float' as const, low: 0.001, high: 0.1, log: true },
      'train.units': { type: 'int' as const, low: 8, high: 64, log: false },
      'train.arch': { type: 'choice' as const, values: ['mlp', 'cnn1d'] },
    };
    const a = tpeSampler({ startup: 1 }).suggest(
      full,
      [
        { params: { 'train.lr': 0.01, 'train.units': 32, 'train.arch': 'mlp' }, loss: 1 },
        { params: { 'train.lr': 0.05, 'train.units': 9, 'train.arch': 'cnn1d' }, loss: 2 },
      ],
      createRng(3),
    );
    const b = tpeSampler({ startup: 1 }).suggest(
      full,
      [
        { params: { 'train.lr': 0.01, 'train.units': 32, 'train.arch': 'mlp' }, loss: 1 },
        { params: { 'train.lr': 0.05, 'train.units': 9, 'train.arch': 'cnn1d' }, loss: 2 },
      ],
      createRng(3),
    );
    expect(a).toEqual(b);
    for (let s = 0; s < 50; s++) {
      const p = randomSampler.suggest(full, [], createRng(s));
      expect(Number(p['train.lr'])).toBeGreaterThanOrEqual(0.001);
      expect(Number(p['train.lr'])).toBeLessThanOrEqual(0.1);
      expect(Number.isInteger(p['train.units'])).toBe(true);
      expect(['mlp', 'cnn1d']).toContain(p['train.arch']);
    }
  });

  it('MedianPruner stops a trial worse than the median after the warm-up only', () => {
    const p = new MedianPruner(2, 2);
    for (let e = 1; e <= 5; e++) {
      p.report(0, e, 1 / e);
      p.report(1, e, 1.1 / e);
    }
    expect(p.report(2, 3, 5)).toBe(false); // fewer than 2 trials completed
    p.complete(0);
    p.complete(1);
    expect(p.report(2, 1, 5)).toBe(false); // warm-up
    expect(p.report(2, 2, 5)).toBe(false); // warm-up
    expect(p.report(2, 3, 5)).toBe(true); // far worse than the median at epoch 3
    expect(p.report(3, 3, 0.2)).toBe(false); // better than the median
  });

  it('MedianPruner sets the bar by completed trials only, like Optuna', () => {
    const p = new MedianPruner(1, 1);
    for (let e = 1; e <= 3; e++) p.report(0, e, 1);
    p.complete(0);
    // A running trial with far better values does not lower the bar...
    for (let e = 1; e <= 3; e++) p.report(1, e, 0.01);
    expect(p.report(2, 2, 0.9)).toBe(false);
    // ...until it completes.
    p.complete(1);
    expect(p.report(3, 2, 0.9)).toBe(true); // median of 1 and 0.01 is 0.505
  });

  it('speakerFolds never puts a speaker in two folds', () => {
    const speakers = ['a', 'b', 'c', 'a', 'd', 'b', 'e', 'c'];
    const folds = speakerFolds(speakers, 3);
    const owner = new Map<string, number>();
    folds.forEach((rows, f) =>
      rows.forEach((r) => {
        expect(owner.get(speakers[r]) ?? f).toBe(f);
        owner.set(speakers[r], f);
      }),
    );
    expect(folds.flat().sort()).toEqual(speakers.map((_, i) => i).sort());
  });
});

let dir: string;
const base: TrainParams = {
  arch: 'mlp',
  epochs: 12,
  batch_size: 16,
  lr: 0.00005,
  units: 8,
  dropout: 0,
  l2: 0,
  patience: 0,
  seed: 1,
  backend: 'cpu',
};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-tune-'));
  writeFeatureFixture(path.join(dir, 'features'), { separation: 1.2, seed: 4 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** In-process executor (same code the workers run), for deterministic, quick studies. */
const inProcess: TrialExecutor = (input, onEpoch) =>
  runTrial({ ...input, onEpoch: async (e, v) => onEpoch(e, v) });

function config(over: Partial<StudyConfig> = {}): StudyConfig {
  return {
    objective: 'val_accuracy',
    direction: 'maximize',
    trials: 6,
    minutes: 5,
    sampler: 'tpe',
    seed: 3,
    parallel: 1,
    prune: false,
    warmup_epochs: 3,
    cv_folds: 0,
    space: {
      'train.lr': { type: 'float', low: 0.001, high: 0.05, log: true },
      'train.units': { type: 'int', low: 8, high: 64, log: true },
    },
    ...over,
  };
}

describe('runStudy', () => {
  it('runStudy finds params at least as good as the starting ones within its budget', async () => {
    const study = await runStudy({
      featuresDir: path.join(dir, 'features'),
      train: base,
      config: config(),
      executor: inProcess,
    });
    expect(study.trials).toHaveLength(6);
    expect(study.baseline.params).toEqual({ 'train.lr': 0.00005, 'train.units': 8 });
    expect(study.best.value).toBeGreaterThanOrEqual(study.baseline.value);
    expect(study.improved).toBe(true);
  });

  it('runStudy prunes clearly bad trials early', async () => {
    const good = { ...base, lr: 0.02, units: 32 };
    const study = await runStudy({
      featuresDir: path.join(dir, 'features'),
      train: good,
      config: config({
        trials: 5,
        prune: true,
        prune_startup_trials: 1, // the baseline alone sets the bar
        sampler: 'random',
        space: { 'train.lr': { type: 'float', low: 1e-7, high: 2e-7, log: true } },
      }),
      executor: inProcess,
    });
    const pruned = study.trials.filter((t) => t.pruned);
    expect(pruned.length).toBeGreaterThanOrEqual(3);
    for (const t of pruned) expect(t.epochs).toBeLessThan(good.epochs);
    expect(study.best.number).toBe(0);
    expect(study.improved).toBe(false);
  });

  it('runStudy prunes by the study direction, not the metric own one (minimizing accuracy prunes no low-accuracy trial)', async () => {
    const good = { ...base, lr: 0.02, units: 32 };
    const study = await runStudy({
      featuresDir: path.join(dir, 'features'),
      train: good,
      config: config({
        trials: 4,
        direction: 'minimize',
        prune: true,
        prune_startup_trials: 1,
        sampler: 'random',
        space: { 'train.lr': { type: 'float', low: 1e-7, high: 2e-7, log: true } },
      }),
      executor: inProcess,
    });
    // Every tiny-lr trial scores below the baseline's accuracy: better for this study.
    expect(study.trials.filter((t) => t.pruned)).toEqual([]);
    expect(study.best.number).not.toBe(0);
  });

  it('runStudy runs trials in parallel on worker threads with the same results as in-process', async () => {
    const c = config({ trials: 3, sampler: 'random' });
    const threads = await runStudy({
      featuresDir: path.join(dir, 'features'),
      train: base,
      config: { ...c, parallel: 2 },
    });
    const local = await runStudy({
      featuresDir: path.join(dir, 'features'),
      train: base,
      config: c,
      executor: inProcess,
    });
    expect(threads.trials.map((t) => t.params)).toEqual(local.trials.map((t) => t.params));
    expect(threads.trials.map((t) => t.value)).toEqual(local.trials.map((t) => t.value));
  });

  for (const parallel of [1, 2]) {
    it(`runStudy (parallel ${parallel}) runs each assignment of a small discrete space once, then stops`, async () => {
      const study = await runStudy({
        featuresDir: path.join(dir, 'features'),
        train: { ...base, epochs: 2 },
        config: config({
          trials: 12,
          parallel,
          // 4 × 1 assignments; the baseline (units 8) is one of them.
          space: {
            'train.units': { type: 'int', low: 8, high: 11, log: false },
            'train.arch': { type: 'choice', values: ['mlp'] },
          },
        }),
        executor: inProcess,
      });
      const keys = study.trials.map((t) => JSON.stringify(t.params));
      expect(new Set(keys).size, keys.join(' ')).toBe(keys.length);
      expect(study.trials.map((t) => Number(t.params['train.units'])).sort((a, b) => a - b)).toEqual([
        8, 9, 10, 11,
      ]);
    });
  }

  it('runTrial scores speaker-grouped k-fold cross-validation', async () => {
    const out = await runTrial({
      featuresDir: path.join(dir, 'features'),
      train: { ...base, lr: 0.02 },
      objective: 'val_f1_macro',
      folds: 3,
    });
    expect(out.metrics.val_f1_macro).toBeGreaterThan(0);
    expect(out.epochs).toBe(3 * base.epochs);
  });
});

describe('lockstep tune', () => {
  it('lockstep tune writes better params into params.yaml, keeps comments, and lists trials as experiments', async () => {
    const t = await createTmpRepo({
      'params.yaml': [
        '# hand-tuned',
        'train:',
        '  lr: 0.00005 # too small',
        '  units: 8',
        '  epochs: 10',
        '  patience: 0',
        '  backend: cpu',
        'tune:',
        '  objective: { metric: val_accuracy, direction: maximize }',
        '  budget: { trials: 4, minutes: 5 }',
        '  parallel: 1',
        '  space:',
        '    train.lr: { type: float, low: 0.005, high: 0.05, log: true }',
        '',
      ].join('\n'),
    });
    try {
      writeFeatureFixture(path.join(t.root, 'out', 'features'), { separation: 1.2, seed: 4 });
      const o = memoryOutput();
      const code = await main(['-C', t.root, 'tune', '--no-repro'], o);
      expect(o.stderr.filter((l) => l.startsWith('lockstep:'))).toEqual([]);
      expect(code).toBe(0);
      const out = o.stdout.join('\n');
      expect(out).toMatch(/params\.yaml updated with trial \d+/);
      const params = t.read('params.yaml');
      expect(params).toContain('# hand-tuned');
      expect(params).not.toContain('lr: 0.00005');
      expect(fs.existsSync(path.join(t.root, 'out/tune/plots/objective.png'))).toBe(true);
      const show = memoryOutput();
      await main(['-C', t.root, 'exp', 'show', '--json'], show);
      const rows = JSON.parse(show.stdout.join('\n')).rows.filter(
        (r: { kind: string }) => r.kind === 'trial',
      );
      expect(rows).toHaveLength(4);
      expect(
        rows.every((r: { metrics: Record<string, number> }) => r.metrics.val_accuracy !== undefined),
      ).toBe(true);
    } finally {
      await t.cleanup();
    }
  });
});

describe('lockstep tune on a space the train params cannot take', () => {
  const cases = [
    {
      why: 'a range reaching a negative lr',
      line: 'train.lr: { type: float, low: -1, high: 0.01 }',
      bad: /tune\.space\.train\.lr: low "-1"/,
    },
    {
      why: 'a choice the params do not allow',
      line: 'train.arch: { type: choice, values: [mlp, nope] }',
      bad: /tune\.space\.train\.arch: choice "nope"/,
    },
    {
      why: 'a key train has not got',
      line: 'train.foo: { type: float, low: 0.1, high: 0.2 }',
      bad: /tune\.space\.train\.foo: low "0\.1"/,
    },
  ];
  for (const { why, line, bad } of cases) {
    it(`lockstep tune rejects ${why} before training any trial (usage error)`, async () => {
      const t = await createTmpRepo({
        'params.yaml': [
          'train:',
          '  epochs: 2',
          '  backend: cpu',
          'tune:',
          '  budget: { trials: 3, minutes: 2 }',
          '  parallel: 1',
          '  space:',
          `    ${line}`,
          '',
        ].join('\n'),
      });
      try {
        writeFeatureFixture(path.join(t.root, 'out', 'features'), { separation: 1.2, seed: 4 });
        const o = memoryOutput();
        const code = await main(['-C', t.root, 'tune', '--no-repro'], o);
        expect(code).toBe(2);
        expect(o.stderr.join('\n')).toMatch(bad);
        expect(o.stderr.filter((l) => l.startsWith('tune: trial'))).toEqual([]);
        expect(fs.existsSync(path.join(t.root, 'out', 'tune'))).toBe(false);
      } finally {
        await t.cleanup();
      }
    });
  }
});

describe('lockstep tune and gc', () => {
  it('lockstep tune (3 trials) then gc then exp apply of the best trial restores its artifacts and sets only its params', async () => {
    const text = [
      '# hand-tuned',
      'train:',
      '  lr: 0.00005   # too small',
      '  units: 8',
      '  epochs: 6',
      '  patience: 0',
      "  backend: 'cpu'",
      'tune:',
      '  objective: { metric: val_accuracy,  direction: maximize }',
      '  budget: { trials: 3, minutes: 5 }',
      '  parallel: 1',
      '  space:',
      '    train.lr: { type: float, low: 0.005, high: 0.05, log: true }',
      '',
    ].join('\n');
    const t = await createTmpRepo({ 'params.yaml': text });
    const cli = async (...args: string[]) => {
      const o = memoryOutput();
      const code = await main(['-C', t.root, ...args], o);
      return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
    };
    try {
      writeFeatureFixture(path.join(t.root, 'out', 'features'), { separation: 1.2, seed: 4 });
      expect((await cli('add', 'out/features')).code).toBe(0);
      t.commit('features');
      const lock = t.read('artifacts.lock.yaml');
      const tuned = await cli('tune', '--no-repro', '--no-write', '--json');
      expect(tuned.code, tuned.err).toBe(0);
      const study = JSON.parse(tuned.out);
      expect(study.trials).toHaveLength(3);
      // Start time and a random part: two studies started in the same second name different experiments.
      expect(study.study).toMatch(/^\d{14}-[0-9a-f]{8}$/);
      expect(t.read('params.yaml')).toBe(text);
      const gc = await cli('gc', '--json');
      expect(gc.code, gc.err).toBe(0);
      expect(
        JSON.parse(gc.out).keptBy.find((k: { kind: string }) => k.kind === 'experiment').roots,
      ).toHaveLength(3);
      fs.rmSync(path.join(t.root, 'out', 'features'), { recursive: true });
      const best = `tune-${study.study}-${String(study.best.number).padStart(3, '0')}`;
      const applied = await cli('exp', 'apply', best, '--json');
      expect(applied.code, applied.err).toBe(0);
      expect(JSON.parse(applied.out).params).toEqual(['train.lr']);
      const lr = study.best.params['train.lr'];
      expect(t.read('params.yaml')).toBe(text.replace('lr: 0.00005 ', `lr: ${lr} `));
      expect(t.read('artifacts.lock.yaml')).toBe(lock);
      const { hashArtifact } = await import('../../lib/store/artifacts.ts');
      const { parseLockfile } = await import('../../lib/lockfile.ts');
      expect((await hashArtifact(t.repo, 'out/features')).hash).toBe(
        parseLockfile(lock).data['out/features']!.hash,
      );
    } finally {
      await t.cleanup();
    }
  });
});
