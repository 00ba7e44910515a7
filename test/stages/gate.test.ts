import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveStageInputs } from '../../lib/pipeline/plan.ts';
import { memoryOutput } from '../../lib/output.ts';
import {
  evaluateGate,
  gateStage,
  resolveBaseline,
  resolveThresholds,
  runGate,
  type ThresholdInput,
} from '../../stages/gate/index.ts';
import { paramsSchema } from '../../lib/params-schema.ts';
import { environmentThresholds, parsePolicy } from '../../lib/environment/policy.ts';
import { PATHS } from '../../lib/paths.ts';
import { evaluateEntry, evaluateLockfile, recordEvaluate } from '../support/evaluate-lock.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';
import { Cache } from '../../lib/store/cache.ts';
import { ConfigError } from '../../lib/errors.ts';

const base = { env: 'prod', commit: 'c0ffee', metrics: { f1_macro: 0.8, latency: 100 } };

describe('gate', () => {
  it.each<{
    name: string;
    t: ThresholdInput;
    value: number;
    baseline?: typeof base | null;
    passed: boolean[];
  }>([
    {
      name: 'value higher passes at the bound',
      t: { metric: 'f1_macro', min: 0.7 },
      value: 0.7,
      passed: [true],
    },
    { name: 'value higher fails below', t: { metric: 'f1_macro', min: 0.7 }, value: 0.69, passed: [false] },
    {
      name: 'value max passes',
      t: { metric: 'latency', direction: 'lower', max: 120 },
      value: 110,
      passed: [true],
    },
    {
      name: 'value max fails',
      t: { metric: 'latency', direction: 'lower', max: 120 },
      value: 121,
      passed: [false],
    },
    {
      name: 'change higher absolute within tolerance',
      t: { metric: 'f1_macro', tolerance: 0.02 },
      value: 0.78,
      baseline: base,
      passed: [true],
    },
    {
      name: 'change higher absolute beyond tolerance',
      t: { metric: 'f1_macro', tolerance: 0.02 },
      value: 0.779,
      baseline: base,
      passed: [false],
    },
    {
      name: 'change higher relative within tolerance',
      t: { metric: 'f1_macro', tolerance: 0.05, tolerance_kind: 'relative' },
      value: 0.761,
      baseline: base,
      passed: [true],
    },
    {
      name: 'change higher relative beyond tolerance',
      t: { metric: 'f1_macro', tolerance: 0.05, tolerance_kind: 'relative' },
      value: 0.759,
      baseline: base,
      passed: [false],
    },
    {
      name: 'change lower absolute: a rise within tolerance',
      t: { metric: 'latency', direction: 'lower', tolerance: 5 },
      value: 105,
      baseline: base,
      passed: [true],
    },
    {
      name: 'change lower relative: a rise beyond tolerance',
      t: { metric: 'latency', direction: 'lower', tolerance: 0.1, tolerance_kind: 'relative' },
      value: 111,
      baseline: base,
      passed: [false],
    },
    {
      name: 'change lower: any drop passes',
      t: { metric: 'latency', direction: 'lower', tolerance: 0 },
      value: 50,
      baseline: base,
      passed: [true],
    },
    {
      name: 'value and change both checked',
      t: { metric: 'f1_macro', min: 0.5, tolerance: 0.01 },
      value: 0.6,
      baseline: base,
      passed: [true, false],
    },
    {
      name: 'no baseline: value thresholds only',
      t: { metric: 'f1_macro', min: 0.5, tolerance: 0.01 },
      value: 0.6,
      baseline: null,
      passed: [true],
    },
    {
      name: 'baseline without the metric: change not checked',
      t: { metric: 'mcc', min: 0.1, tolerance: 0.01 },
      value: 0.2,
      baseline: base,
      passed: [true, true],
    },
  ])('evaluateGate $name', ({ t, value, baseline, passed }) => {
    const v = evaluateGate({ metrics: { [t.metric]: value }, thresholds: [t], baseline: baseline ?? null });
    expect(v.reasons.map((r) => r.passed)).toEqual(passed);
    expect(v.passed).toBe(passed.every(Boolean));
    expect(v.reasons.every((r) => r.metric === t.metric && r.detail.startsWith(t.metric))).toBe(true);
  });

  it('environment thresholds: an empty policy list is refused in the one schema, a set one wins, none falls back', () => {
    expect(() => parsePolicy('branch: dev\ngate:\n  thresholds: []\n', 'promotion/dev.yaml')).toThrow(
      /^promotion\/dev\.yaml:3: gate\.thresholds: must be >= 1/,
    );
    const fromParams = paramsSchema.parse({}).gate.thresholds;
    const set = parsePolicy('branch: dev\ngate:\n  thresholds:\n    - { metric: mcc, min: 0.3 }\n', 'p');
    expect(environmentThresholds('dev', set, fromParams)).toEqual({
      thresholds: [expect.objectContaining({ metric: 'mcc', min: 0.3 })],
      source: 'promotion/dev.yaml',
    });
    const unset = parsePolicy('branch: dev\n', 'p');
    expect(environmentThresholds('dev', unset, fromParams)).toEqual({
      thresholds: fromParams,
      source: 'params.yaml gate.thresholds',
    });
    expect(environmentThresholds('dev', undefined, fromParams).source).toBe('params.yaml gate.thresholds');
  });

  it('evaluateGate fails a threshold whose metric is missing and accepts an undefined baseline', () => {
    const v = evaluateGate({ metrics: { accuracy: 0.9 }, thresholds: [{ metric: 'f1_macro', min: 0.1 }] });
    expect(v).toEqual({
      passed: false,
      baseline: null,
      reasons: [
        {
          metric: 'f1_macro',
          kind: 'value',
          passed: false,
          detail: "f1_macro: missing from the candidate's metrics",
        },
      ],
    });
  });

  describe('with a real git repository', () => {
    let t: TmpRepo | undefined;
    afterEach(async () => {
      await t?.cleanup();
      t = undefined;
    });

    const lockfileWith = (metrics: Record<string, number>): string =>
      evaluateLockfile(evaluateEntry([], metrics));

    async function runGateStage(params: ReturnType<typeof paramsSchema.parse>) {
      const root = t!.root;
      const stage = gateStage(params);
      const ctx = {
        root,
        params,
        out: memoryOutput(),
        abs: (rel: string) => path.join(root, rel),
        signal: new AbortController().signal,
        // As the runner does: the declared inputs resolved at plan time.
        inputs: await resolveStageInputs(root, stage),
      };
      const result = await stage.run(ctx);
      const verdict = JSON.parse(fs.readFileSync(path.join(root, PATHS.gate, 'verdict.json'), 'utf8'));
      return { result, verdict, ctx };
    }

    it('gateStage resolves the baseline from the lockfile at the environment branch head', async () => {
      t = await createTmpRepo({ 'README.md': 'x\n' });
      t.git('checkout', '-q', '-b', 'prod');
      t.write('artifacts.lock.yaml', lockfileWith({ f1_macro: 0.8, accuracy: 0.82 }));
      const prodHead = t.commit('deploy model to prod');
      t.git('checkout', '-q', 'main');
      t.write(`${PATHS.eval}/metrics.json`, JSON.stringify({ f1_macro: 0.75, accuracy: 0.81 }));

      const params = paramsSchema.parse({});
      const { result, verdict, ctx } = await runGateStage(params);
      // The out holds the baseline's metrics, not its commit (that is in the locked input).
      expect(verdict.baseline).toEqual({ env: 'prod', metrics: { f1_macro: 0.8, accuracy: 0.82 } });
      expect(ctx.inputs.baseline).toEqual({
        hash: expect.stringMatching(/^[0-9a-f]{64}$/),
        label: `prod@${prodHead.slice(0, 8)}`,
        rev: prodHead,
      });
      // Defaults: min 0.5 and tolerance 0.02 on both metrics; f1 dropped 0.05.
      expect(
        verdict.reasons.map((r: { metric: string; kind: string; passed: boolean }) => [
          r.metric,
          r.kind,
          r.passed,
        ]),
      ).toEqual([
        ['f1_macro', 'value', true],
        ['f1_macro', 'change', false],
        ['accuracy', 'value', true],
        ['accuracy', 'change', true],
      ]);
      expect(verdict.passed).toBe(false);
      expect(result).toEqual({
        failed: true,
        summary: expect.stringMatching(
          /^gate failed \(baseline prod@[0-9a-f]{7}\): f1_macro 0\.75 vs prod 0\.8/,
        ),
      });
      expect(ctx.out.stderr).toContain('gate: thresholds from params.yaml gate.thresholds');

      // Back at the same level as prod: passes.
      t.write(`${PATHS.eval}/metrics.json`, JSON.stringify({ f1_macro: 0.79, accuracy: 0.81 }));
      const again = await runGateStage(params);
      expect(again.verdict.passed).toBe(true);
      expect(again.result).toEqual({ summary: expect.stringMatching(/^gate passed/) });
    });

    it('gateStage compares slices with a baseline whose lockfile leaves them in its evaluate out', async () => {
      const sliceOf = (f1: number) => ({
        n: 40,
        speakers: 1,
        min_size: 20,
        metrics: { f1_macro: f1 },
        intervals: { f1_macro: { lo: f1 - 0.04, hi: f1 + 0.04 } },
      });
      const evalFile = (s03: number) => ({
        f1_macro: 0.8,
        slices: { speaker: { S03: sliceOf(s03), S08: sliceOf(0.8) } },
      });
      t = await createTmpRepo({ 'README.md': 'x\n' });
      t.git('checkout', '-q', '-b', 'prod');
      // As the runner writes it now: headline metrics only, the slices in the out.
      const out = await recordEvaluate(t, evalFile(0.8));
      expect(t.read('artifacts.lock.yaml')).not.toContain('slices');
      const prodHead = t.commit('deploy model to prod');
      t.git('checkout', '-q', 'main');
      t.write(`${PATHS.eval}/metrics.json`, JSON.stringify(evalFile(0.5)));

      const params = paramsSchema.parse({
        gate: {
          baseline_env: 'prod',
          thresholds: [{ metric: 'f1_macro', slice: 'speaker', tolerance: 0.02 }],
        },
      });
      expect(await resolveBaseline(t.root, 'prod')).toEqual({
        env: 'prod',
        commit: prodHead,
        metrics: { f1_macro: 0.8 },
        slicesOut: out.hash,
      });
      const { verdict, ctx } = await runGateStage(params);
      const change = verdict.reasons.find((r: { kind: string }) => r.kind === 'change');
      expect(change).toMatchObject({ slice: 'speaker', passed: false });
      expect(change.detail).toMatch(/S03/);
      expect(change.detail).not.toMatch(/S08/);
      expect(verdict.baseline.metrics['slices.speaker.S03.metrics.f1_macro']).toBe(0.8);

      // The slices' out is part of the baseline's identity, read from the lockfile alone.
      t.git('checkout', '-q', 'prod');
      t.write(
        'artifacts.lock.yaml',
        evaluateLockfile(evaluateEntry([{ ...out, hash: 'd'.repeat(64) }], { f1_macro: 0.8 })),
      );
      t.commit('another evaluate out, same headline metrics');
      t.git('checkout', '-q', 'main');
      const moved = await resolveStageInputs(t.root, gateStage(params));
      expect(moved.baseline!.hash).not.toBe(ctx.inputs.baseline!.hash);
      t.git('branch', '-q', '-f', 'prod', prodHead);

      // Neither the cache nor a remote has them: the gate says so instead of passing unchecked.
      fs.rmSync(new Cache(t.repo).objectPath(out.hash));
      await expect(runGateStage(params)).rejects.toThrow(ConfigError);
      await expect(runGateStage(params)).rejects.toThrow(
        /^out\/eval@\S+@[0-9a-f]{8}: object is missing from the cache .*A slice change rule needs the baseline's slices/,
      );
    });

    it('gateStage refuses, not passes, when the baseline out holds no readable slices', async () => {
      t = await createTmpRepo({ 'README.md': 'x\n' });
      t.git('checkout', '-q', '-b', 'prod');
      // An evaluate out whose metrics.json lost its slices: nothing a slice change could be judged on.
      await recordEvaluate(t, { f1_macro: 0.8 });
      t.commit('deploy model to prod');
      t.git('checkout', '-q', 'main');
      const slice = { n: 40, speakers: 1, min_size: 20, metrics: { f1_macro: 0.5 }, intervals: {} };
      t.write(
        `${PATHS.eval}/metrics.json`,
        JSON.stringify({ f1_macro: 0.8, slices: { speaker: { S03: slice, S08: slice } } }),
      );
      const params = paramsSchema.parse({
        gate: {
          baseline_env: 'prod',
          thresholds: [{ metric: 'f1_macro', slice: 'speaker', tolerance: 0.02 }],
        },
      });
      await expect(runGateStage(params)).rejects.toThrow(
        /^out\/eval\/metrics\.json@prod@[0-9a-f]{8}: has no "slices" key\. .*slice change rule/,
      );
    });

    it('gateStage prefers the promotion policy thresholds and uses value thresholds only without a branch', async () => {
      t = await createTmpRepo({
        'promotion/staging.yaml':
          'branch: env/staging\ngate:\n  thresholds:\n    - { metric: mcc, min: 0.3, tolerance: 0.01 }\n',
      });
      t.write(`${PATHS.eval}/metrics.json`, JSON.stringify({ mcc: 0.35 }));
      const params = paramsSchema.parse({
        gate: { baseline_env: 'staging', thresholds: [{ metric: 'mcc', min: 0.2, tolerance: 0.05 }] },
      });
      expect(gateStage(params).deps).toEqual([
        `${PATHS.eval}/metrics.json`,
        `${PATHS.eval}/predictions.json`,
        'promotion/staging.yaml',
      ]);
      const first = await runGateStage(params);
      expect(first.verdict).toEqual({
        passed: true,
        baseline: null,
        reasons: [{ metric: 'mcc', kind: 'value', passed: true, detail: 'mcc 0.35 >= min 0.3' }],
      });
      expect(first.ctx.out.stderr).toContain('gate: thresholds from promotion/staging.yaml');

      expect(await resolveThresholds(t.root, 'staging', params.gate)).toEqual({
        thresholds: [
          { metric: 'mcc', direction: 'higher', min: 0.3, tolerance: 0.01, tolerance_kind: 'absolute' },
        ],
        source: 'promotion/staging.yaml',
      });
      const fromParams = await runGate({
        root: t.root,
        params: params.gate,
        metricsPath: path.join(t.root, PATHS.eval, 'metrics.json'),
        verdictPath: path.join(t.root, 'out/params-gate.json'),
        thresholdsFrom: 'params',
      });
      expect(fromParams.reasons.map((r) => r.detail)).toEqual(['mcc 0.35 >= min 0.2']);
      expect(fromParams.thresholdsSource).toBe('params.yaml gate.thresholds');

      // The policy names the branch: env/staging, found as a remote-tracking branch too.
      t.git('checkout', '-q', '-b', 'env/staging');
      t.write('artifacts.lock.yaml', lockfileWith({ mcc: 0.5 }));
      const head = t.commit('staging');
      t.git('update-ref', 'refs/remotes/origin/env/staging', head);
      t.git('checkout', '-q', 'main');
      t.git('branch', '-q', '-D', 'env/staging');
      expect(await resolveBaseline(t.root, 'staging')).toEqual({
        env: 'staging',
        commit: head,
        metrics: { mcc: 0.5 },
      });
      const second = await runGateStage(params);
      expect(
        second.verdict.reasons.map((r: { kind: string; passed: boolean }) => [r.kind, r.passed]),
      ).toEqual([
        ['value', true],
        ['change', false],
      ]);
      expect(second.result?.failed).toBe(true);
    });
  });
});
