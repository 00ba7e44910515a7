/**
 * Which plots a set of revisions gets, and their specs: learning curves, confusion matrices,
 * per-class F1, slice metrics and, for environments, monitoring histograms. One revision gets
 * the single-revision templates; several get the `*Diff` templates (overlaid, side by side,
 * grouped). A plot no revision has data for is left out.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { RevisionPlotData } from './collect.ts';
import { confusionSpec, learningCurvesSpec, monitorHistogramsSpec, perClassF1Spec } from './templates.ts';
import {
  confusionDiffSpec,
  learningCurvesDiffSpec,
  perClassF1DiffSpec,
  sliceMetricsSpec,
} from './diff-templates.ts';

export interface NamedPlot {
  /** File stem: `learning_curves`, `confusion`, `per_class_f1`, `slices`, `monitor_<env>`. */
  name: string;
  title: string;
  spec: TopLevelSpec;
}

/** Per-class F1 of evaluate's metrics (`f1.<label>`), in the metrics' order. */
export function perClassF1Of(metrics: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(metrics)) if (k.startsWith('f1.')) out[k.slice(3)] = v;
  return out;
}

/** The plots of `revs` (see the module comment), in a fixed order. */
export function buildPlots(revs: RevisionPlotData[]): NamedPlot[] {
  const plots: NamedPlot[] = [];
  const single = revs.length === 1;
  const curves = revs.filter((r) => r.history?.epochs?.length);
  if (curves.length > 0) {
    plots.push({
      name: 'learning_curves',
      title: 'Learning curves',
      spec: single
        ? learningCurvesSpec(curves[0]!.history!.epochs, curves[0]!.history!.best_epoch)
        : learningCurvesDiffSpec(
            curves.map((r) => ({ rev: r.rev, epochs: r.history!.epochs, bestEpoch: r.history!.best_epoch })),
          ),
    });
  }
  const confusions = revs.filter((r) => r.confusion);
  if (confusions.length > 0) {
    const c = confusions[0]!.confusion!;
    plots.push({
      name: 'confusion',
      title: 'Confusion matrix',
      spec: single
        ? confusionSpec(c.labels, c.matrix, `Confusion matrix (test split), ${confusions[0]!.rev}`)
        : confusionDiffSpec(confusions.map((r) => ({ rev: r.rev, ...r.confusion! }))),
    });
  }
  const perClass = revs
    .map((r) => ({ rev: r.rev, f1: perClassF1Of(r.metrics) }))
    .filter((r) => Object.keys(r.f1).length > 0);
  if (perClass.length > 0) {
    const only = perClass[0]!;
    plots.push({
      name: 'per_class_f1',
      title: 'F1 per class',
      spec: single
        ? perClassF1Spec(Object.keys(only.f1), Object.values(only.f1))
        : perClassF1DiffSpec(perClass),
    });
  }
  const slices = revs.flatMap((r) => r.slices.map((s) => ({ rev: r.rev, ...s })));
  if (slices.length > 0) {
    plots.push({
      name: 'slices',
      title: 'Slice metrics',
      spec: sliceMetricsSpec(
        slices.map(({ rev, slice, metric, value }) => ({ rev, slice, metric, value })),
        revs.map((r) => r.rev),
      ),
    });
  }
  for (const r of revs) {
    if (!r.monitor) continue;
    plots.push({
      name: `monitor_${r.monitor.env}`,
      title: `Monitoring histograms: ${r.monitor.env}`,
      spec: monitorHistogramsSpec(r.monitor.env, r.monitor.features),
    });
  }
  return plots;
}
