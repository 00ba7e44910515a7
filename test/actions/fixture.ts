/**
 * A small pipeline for the action tests (plain .mjs: the bundles import it without a loader):
 * validate (writes anomalies), evaluate (metrics from quality.json, confusion, a plot), gate (passes or not as
 * gate.json says) and train (throws when data/train-fails exists).
 */
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

export const FIXTURE_PIPELINE = `
import fs from 'node:fs';
import path from 'node:path';

function write(ctx, rel, data) {
  const file = ctx.abs(rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof data === 'string' ? data : JSON.stringify(data, null, 2));
}

export function pipeline() {
  return [
    {
      name: 'validate', description: 'fixture validate', code: ['pipeline.mjs'], deps: ['data'], params: [],
      outs: ['out/validate'],
      async run(ctx) {
        write(ctx, 'out/validate/report.json', {
          ok: false,
          anomalies: [
            { severity: 'error', kind: 'silent', file: 'data/a.wav', detail: 'RMS -80 dBFS is below -60 dBFS' },
            { severity: 'warning', kind: 'short', file: 'data/b.wav', detail: 'duration 0.2 s is below 0.3 s' },
          ],
          excluded: ['data/a.wav'],
        });
      },
    },
    {
      name: 'evaluate', description: 'fixture evaluate', code: ['pipeline.mjs'], deps: ['out/validate', 'quality.json'], params: [],
      outs: ['out/eval'], metrics: ['out/eval/metrics.json'],
      async run(ctx) {
        const { accuracy } = JSON.parse(fs.readFileSync(ctx.abs('quality.json'), 'utf8'));
        write(ctx, 'out/eval/metrics.json', { accuracy, f1_macro: 0.7, 'f1.angry': 0.8, 'f1.sad': 0.6 });
        write(ctx, 'out/eval/confusion.json', { labels: ['angry', 'sad'], matrix: [[3, 1], [1, 3]] });
        write(ctx, 'out/eval/plots/confusion.svg', '<svg xmlns="http://www.w3.org/2000/svg"/>');
      },
    },
    {
      name: 'gate', description: 'fixture gate', code: ['pipeline.mjs'], deps: ['out/eval/metrics.json', 'gate.json'],
      params: [], outs: ['out/gate'],
      async run(ctx) {
        const { pass } = JSON.parse(fs.readFileSync(ctx.abs('gate.json'), 'utf8'));
        const reasons = [{ metric: 'f1_macro', kind: 'value', passed: pass, detail: pass ? '0.70 >= 0.60' : '0.70 < 0.90' }];
        write(ctx, 'out/gate/verdict.json', { passed: pass, baseline: null, reasons });
        return { failed: !pass, summary: reasons[0].detail };
      },
    },
    {
      name: 'train', description: 'fixture train', code: ['pipeline.mjs'], deps: ['data'], params: [],
      outs: ['out/train'],
      async run(ctx) {
        if (fs.existsSync(ctx.abs('data/train-fails'))) throw new Error('fixture training diverged (loss is NaN)');
        write(ctx, 'out/train/metrics.json', { backend: 'cpu', epochs_run: 1, best_val_accuracy: 0.5 });
      },
    },
  ];
}
`;

/** A temp git repo with params.yaml, the fixture pipeline, data and gate.json committed. */
export function createFixtureRepo(options: { gatePasses?: boolean } = {}): Promise<TmpRepo> {
  return createTmpRepo({
    'params.yaml': 'data:\n  source: demo\n',
    'pipeline.mjs': FIXTURE_PIPELINE,
    'data/a.wav': 'not really audio',
    'data/b.wav': 'short',
    'gate.json': JSON.stringify({ pass: options.gatePasses ?? true }),
    'quality.json': JSON.stringify({ accuracy: 0.75 }),
  });
}
