/**
 * `lockstep plots diff` across two commits of a real git repository: each revision's evaluate
 * and train outputs are read from the lockfile at that commit and the cache (the workspace holds
 * neither commit's files), and the specs carry both revisions' data.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';
import { evalMetricsSchema, type EvalMetricsFile } from '../../lib/slices/shape.ts';
import { learningCurvesDiffSpec } from '../../lib/plots/diff-templates.ts';
import { renderSpec } from '../../lib/plots/render.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

async function cli(...args: string[]) {
  const out = memoryOutput();
  const code = await main(['-C', t!.root, ...args], out);
  return { code, stdout: out.stdout.join('\n'), stderr: out.stderr.join('\n') };
}

const LABELS = ['angry', 'happy', 'sad'];

/** Writes evaluate's and train's outputs for one "model", pins them with lockstep add, commits. */
async function commitModel(
  name: string,
  f1: number[],
  matrix: number[][],
  losses: number[],
  slices?: EvalMetricsFile['slices'],
) {
  const metrics: Record<string, unknown> = { accuracy: f1[0], f1_macro: f1[1], mcc: f1[2] };
  LABELS.forEach((l, i) => (metrics[`f1.${l}`] = f1[i]));
  if (slices) metrics.slices = slices;
  evalMetricsSchema.parse(metrics); // the fixture is what evaluate writes
  t!.write('out/eval/metrics.json', JSON.stringify(metrics));
  t!.write('out/eval/confusion.json', JSON.stringify({ labels: LABELS, matrix }));
  t!.write(
    'out/train/history.json',
    JSON.stringify({
      epochs: losses.map((loss, i) => ({
        epoch: i + 1,
        loss,
        acc: 1 - loss,
        val_loss: loss + 0.1,
        val_acc: 0.9 - loss,
      })),
      best_epoch: losses.length,
    }),
  );
  const r = await cli('add', 'out/eval', 'out/train');
  expect(r.code, r.stderr).toBe(0);
  return t!.commit(name);
}

describe('plots diff', () => {
  it('plots diff across two commits gives overlaid, side-by-side and grouped specs', async () => {
    t = await createTmpRepo();
    const a = await commitModel(
      'model a',
      [0.5, 0.6, 0.7],
      [
        [3, 1, 0],
        [1, 3, 0],
        [0, 0, 4],
      ],
      [0.9, 0.5],
    );
    const b = await commitModel(
      'model b',
      [0.8, 0.7, 0.9],
      [
        [4, 0, 0],
        [1, 3, 0],
        [0, 1, 3],
      ],
      [0.8, 0.4, 0.3],
      {
        speaker: {
          OAF: {
            n: 30,
            speakers: 1,
            min_size: 20,
            metrics: { f1_macro: 0.4, accuracy: 0.5, mcc: 0.2 },
            intervals: { f1_macro: { lo: 0.3, hi: 0.5 } },
          },
          YAF: {
            n: 28,
            speakers: 1,
            min_size: 20,
            metrics: { f1_macro: 0.9, accuracy: 0.85 },
            intervals: {},
          },
        },
      },
    );
    // The workspace holds neither commit's files: everything comes from the lockfile + cache.
    fs.rmSync(path.join(t.root, 'out'), { recursive: true, force: true });

    const r = await cli('plots', 'diff', a, b, '--json');
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.revisions.map((x: any) => x.commit)).toEqual([a, b]);
    const byName = Object.fromEntries(res.plots.map((p: any) => [p.name, p.spec]));
    expect(Object.keys(byName)).toEqual(['learning_curves', 'confusion', 'per_class_f1', 'slices']);

    // Learning curves: every epoch of both revisions, train and validation, coloured by revision.
    const curves = byName.learning_curves;
    expect(curves.spec.encoding.color.field).toBe('rev');
    const losses = curves.data.values.filter((v: any) => v.metric === 'loss' && v.split === 'train');
    expect(losses.map((v: any) => [v.rev, v.epoch, v.value])).toEqual([
      [a, 1, 0.9],
      [a, 2, 0.5],
      [b, 1, 0.8],
      [b, 2, 0.4],
      [b, 3, 0.3],
    ]);

    // Confusion: one panel per revision, then b − a.
    const panels = byName.confusion.hconcat;
    expect(panels.map((p: any) => p.title)).toEqual([a, b, `${b} − ${a}`]);
    const cell = (p: any, actual: string, predicted: string, field: string) =>
      p.data.values.find((v: any) => v.actual === actual && v.predicted === predicted)[field];
    expect(cell(panels[0], 'angry', 'angry', 'count')).toBe(3);
    expect(cell(panels[2], 'angry', 'angry', 'delta')).toBe(1);
    expect(cell(panels[2], 'sad', 'happy', 'delta')).toBe(1);
    expect(cell(panels[2], 'sad', 'sad', 'delta')).toBe(-1);

    // Per-class F1: one bar per (class, revision).
    const f1 = byName.per_class_f1;
    expect(f1.encoding.xOffset.field).toBe('rev');
    expect(f1.data.values).toContainEqual({ rev: a, label: 'happy', f1: 0.6 });
    expect(f1.data.values).toContainEqual({ rev: b, label: 'happy', f1: 0.7 });
    expect(f1.data.values).toHaveLength(6);

    // Slices only where present (b), revision order kept for colours.
    expect(byName.slices.data.values).toEqual([
      { rev: b, slice: 'speaker=OAF', metric: 'f1_macro', value: 0.4 },
      { rev: b, slice: 'speaker=OAF', metric: 'accuracy', value: 0.5 },
      { rev: b, slice: 'speaker=YAF', metric: 'f1_macro', value: 0.9 },
      { rev: b, slice: 'speaker=YAF', metric: 'accuracy', value: 0.85 },
    ]);
    expect(res.revisions[0].notes.join('\n')).not.toContain('metrics.json');
  });

  it('plots diff writes SVG, PNG and spec per plot and one index.html', async () => {
    t = await createTmpRepo();
    const a = await commitModel(
      'model a',
      [0.5, 0.6, 0.7],
      [
        [3, 1, 0],
        [1, 3, 0],
        [0, 0, 4],
      ],
      [0.9, 0.5],
    );
    await commitModel(
      'model b',
      [0.8, 0.7, 0.9],
      [
        [4, 0, 0],
        [1, 3, 0],
        [0, 1, 3],
      ],
      [0.8, 0.4, 0.3],
    );
    const r = await cli('plots', 'diff', a, 'HEAD', '--out', 'plots-out');
    expect(r.code, r.stderr).toBe(0);
    const files = fs.readdirSync(path.join(t.root, 'plots-out')).sort();
    expect(files).toEqual(
      ['confusion', 'learning_curves', 'per_class_f1']
        .flatMap((n) => [`${n}.png`, `${n}.svg`, `${n}.vl.json`])
        .concat('index.html')
        .sort(),
    );
    const svg = fs.readFileSync(path.join(t.root, 'plots-out', 'per_class_f1.svg'), 'utf8');
    expect(svg).toContain(a);
    expect(svg).toContain('HEAD');
  });

  it('plots diff gives every revision its own colour, past the 10 of the default scheme', async () => {
    for (const n of [3, 15, 30]) {
      const revs = Array.from({ length: n }, (_, i) => ({
        rev: `rev-${i}`,
        epochs: [1, 2].map((epoch) => ({
          epoch,
          loss: 1 / (epoch + i),
          acc: 0.5,
          val_loss: null,
          val_acc: null,
        })),
      }));
      const { svg } = await renderSpec(learningCurvesDiffSpec(revs));
      // One line per revision and panel (loss, accuracy), each stroked with its revision's colour.
      const strokes = [
        ...svg.matchAll(/<path[^>]*aria-roledescription="line mark"[^>]*stroke="([^"]+)"/g),
      ].map((m) => m[1]);
      expect(strokes.length, `${n} revisions`).toBeGreaterThanOrEqual(n);
      expect(new Set(strokes).size, `${n} revisions`).toBe(n);
    }
  });

  it('plots diff names a revision that is nothing', async () => {
    t = await createTmpRepo();
    const r = await cli('plots', 'diff', 'no-such-rev', 'HEAD', '--json');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'revision "no-such-rev": not a commit, branch, tag, environment or experiment',
    );
  });
});
