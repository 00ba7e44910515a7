import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeWav, type DecodedAudio } from '../../lib/audio/wav.ts';
import { featurizeAudio, summaryFeatureNames } from '../../lib/ml/features.ts';
import { createRng, shuffledIndices } from '../../lib/rng.ts';
import {
  binValues,
  jensenShannon,
  jensenShannonCorrected,
  lInfinity,
} from '../../lib/monitoring/distance.ts';
import {
  computeMonitorReport,
  renderMonitorMarkdown,
  DEFAULT_THRESHOLDS,
  type MonitorReference,
  type MonitorThresholds,
} from '../../lib/monitoring/monitor.ts';
import type { PredictionLogEntry } from '../../lib/serving/logs.ts';
import { histograms } from '../../stages/featurize/stats.ts';
import { makeTinyCorpus } from '../support/corpus.ts';
import { labelOf, TEST_FEATURIZE } from '../support/audio-model.ts';

describe('distances', () => {
  it.each([
    [[1, 0], [1, 0], 0],
    [[1, 0], [0, 1], 1],
    [[1, 1], [1, 1], 0],
    [[3, 1], [1, 3], 0.1887218755408671],
  ])('jensenShannon %j vs %j is %d', (a, b, want) => {
    expect(jensenShannon(a, b)).toBeCloseTo(want, 10);
  });

  it('jensenShannonCorrected removes the small-sample bias but keeps real differences', () => {
    const same = jensenShannonCorrected([10, 12, 9, 11], [11, 10, 12, 9]);
    expect(same.js).toBeGreaterThan(0);
    expect(same.corrected).toBe(0);
    const diff = jensenShannonCorrected([40, 0, 0, 2], [0, 2, 40, 0]);
    expect(diff.corrected).toBeGreaterThan(0.8);
  });

  it('binValues counts under- and overflow instead of clamping', () => {
    expect(binValues([-5, 0, 0.5, 1, 1, 7, NaN], [0, 0.5, 1]).counts).toEqual([1, 1, 3, 1]);
  });

  it('lInfinity is the largest probability difference', () => {
    expect(lInfinity({ a: 1, b: 1 }, { a: 3, b: 1 })).toBeCloseTo(0.25, 12);
    expect(lInfinity({ a: 1 }, { b: 1 })).toBe(1);
  });
});

const NOW = new Date('2026-11-20T12:00:00Z');
const HOUR = 3600_000;
let tmp: string;
let audios: DecodedAudio[];
let labels: string[];
let base: Float32Array[];
const names = summaryFeatureNames(TEST_FEATURIZE);
const thresholds: MonitorThresholds = { ...DEFAULT_THRESHOLDS, min_samples: 40 };

function summaries(list: DecodedAudio[]): Float32Array[] {
  return list.map((a) => featurizeAudio(TEST_FEATURIZE, a).summary);
}

function referenceOf(idx: number[]): MonitorReference {
  const D = names.length;
  const flat = new Float32Array(idx.length * D);
  idx.forEach((i, r) => flat.set(base[i], r * D));
  const labelCounts: Record<string, number> = {};
  for (const i of idx) labelCounts[labels[i]] = (labelCounts[labels[i]] ?? 0) + 1;
  return { featureNames: names, histograms: histograms(names, flat, idx.length), labelCounts };
}

/** Log entries for clips `idx` with features `feats`, spread over the window ending `end` hours before NOW. */
function entries(idx: number[], feats: Float32Array[], hoursAgo: number): PredictionLogEntry[] {
  return idx.map((i, k) => ({
    time: new Date(NOW.getTime() - hoursAgo * HOUR - (k + 1) * 60_000).toISOString(),
    env: 'prod',
    status: 'ok',
    label: labels[i],
    summary: Array.from(feats[i]),
    latencyMs: 5 + (k % 7),
  }));
}

/** Three disjoint thirds of the pool: reference, previous window, recent window. */
function split(seed: number): [number[], number[], number[]] {
  const order = Array.from(shuffledIndices(base.length, createRng(seed)));
  const third = Math.floor(order.length / 3);
  return [order.slice(0, third), order.slice(third, 2 * third), order.slice(2 * third, 3 * third)];
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-monitor-'));
  const files: string[] = [];
  for (const seed of [1, 2, 3]) {
    files.push(...(await makeTinyCorpus(path.join(tmp, String(seed)), { speakers: 4, words: 2, seed })));
  }
  audios = files.map((f) => decodeWav(fs.readFileSync(f), f));
  labels = files.map(labelOf);
  base = summaries(audios);
}, 240_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('computeMonitorReport', () => {
  it('computeMonitorReport does not alert on same-distribution traffic (false-alarm rate over 20 seeds)', () => {
    let alarms = 0;
    const worst: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const [ref, prev, recent] = split(seed);
      const report = computeMonitorReport(
        'prod',
        [...entries(prev, base, 30), ...entries(recent, base, 1)],
        referenceOf(ref),
        thresholds,
        NOW,
      );
      expect(report.status).not.toBe('not-enough-data');
      if (report.status === 'alert') {
        alarms++;
        console.log('ALERTS', seed, report.alerts.join(' / '));
      }
      worst.push(Math.max(...report.features.map((f) => Math.max(f.skew, f.drift ?? 0))));
    }
    const rate = alarms / 20;
    fs.mkdirSync('test-output', { recursive: true });
    fs.writeFileSync(
      'test-output/monitor-false-alarms.json',
      JSON.stringify(
        { seeds: 20, alarms, rate, samplesPerWindow: Math.floor(base.length / 3), worst },
        null,
        2,
      ),
    );
    console.log(
      `monitor false-alarm rate over 20 seeds: ${rate} (worst corrected JS per seed: ${worst.map((w) => w.toFixed(3)).join(' ')})`,
    );
    expect(rate).toBeLessThanOrEqual(0.1);
  });

  const shifts: [string, (a: DecodedAudio, k: number) => DecodedAudio][] = [
    ['gain ×0.3', (a) => ({ ...a, channels: a.channels.map((c) => c.map((v) => v * 0.3)) })],
    [
      'noise',
      (a, k) => {
        const rng = createRng(1000 + k);
        return { ...a, channels: a.channels.map((c) => c.map((v) => v + (rng.next() - 0.5) * 0.05)) };
      },
    ],
    ['pitch +20%', (a) => ({ ...a, sampleRate: Math.round(a.sampleRate * 1.2) })],
  ];

  it.each(shifts)('computeMonitorReport detects drift and skew injected by %s', (_name, shift) => {
    const shifted = summaries(audios.map((a, k) => shift(a, k)));
    for (const seed of [1, 2, 3]) {
      const [ref, prev, recent] = split(seed);
      const report = computeMonitorReport(
        'prod',
        [...entries(prev, base, 30), ...entries(recent, shifted, 1)],
        referenceOf(ref),
        thresholds,
        NOW,
      );
      expect(report.status).toBe('alert');
      expect(report.alerts.some((a) => a.startsWith('skew:'))).toBe(true);
      expect(report.alerts.some((a) => a.startsWith('drift:'))).toBe(true);
    }
  });

  it('computeMonitorReport says "not enough data" below the minimum sample size', () => {
    const [ref, , recent] = split(1);
    const report = computeMonitorReport(
      'prod',
      entries(recent.slice(0, 10), base, 1),
      referenceOf(ref),
      thresholds,
      NOW,
    );
    expect(report.status).toBe('not-enough-data');
    expect(report.alerts).toEqual([]);
    expect(renderMonitorMarkdown(report)).toMatch(/Not enough data: 10 predictions/);
  });

  it('computeMonitorReport flags error rate, latency and predicted-class drift', () => {
    const [ref, prev, recent] = split(2);
    const bad = entries(recent, base, 1).map((e, k) => ({
      ...e,
      label: 'angry',
      latencyMs: 400,
      status: (k % 5 === 0 ? 'error' : 'ok') as PredictionLogEntry['status'],
    }));
    const report = computeMonitorReport(
      'prod',
      [...entries(prev, base, 30), ...bad],
      referenceOf(ref),
      thresholds,
      NOW,
    );
    expect(report.errorRate).toBeGreaterThan(0.15);
    expect(report.alerts.join('\n')).toMatch(/error rate/);
    expect(report.alerts.join('\n')).toMatch(/p99 latency 400 ms > 250 ms/);
    expect(report.alerts.join('\n')).toMatch(/drift: predicted class L∞/);
    expect(report.alerts.join('\n')).toMatch(/skew: predicted class L∞/);
  });
});

describe('chiSquareSurvival', () => {
  it.each([
    [3.841458820694124, 1, 0.05],
    [18.307038053275146, 10, 0.05],
    [6.634896601021214, 1, 0.01],
    [1, 2, Math.exp(-0.5)],
  ])('chiSquareSurvival(%d, %d) is %d', async (x, dof, p) => {
    const { chiSquareSurvival } = await import('../../lib/monitoring/distance.ts');
    expect(chiSquareSurvival(x, dof)).toBeCloseTo(p, 6);
  });
});
