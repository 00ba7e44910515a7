/**
 * Skew and drift monitoring from prediction logs, with TFDV's definitions:
 * - skew: serving feature distributions against the training statistics saved by featurize
 *   (Jensen-Shannon divergence per numeric feature; L-infinity for the predicted class against
 *   the training label distribution);
 * - drift: the recent window against the previous window (same distances);
 * plus volume, latency and error-rate summaries, and the input-anomaly rate per kind (requests
 * whose clip the model's input checks flagged or refused). Below `min_samples` predictions in the
 * window it reports "not enough data" instead of alerting on distributions.
 */
import type { TopLevelSpec } from 'vega-lite';
import { isShadowEntry, type PredictionLogEntry } from '../serving/logs.ts';
import { monitorHistogramsSpec } from '../plots/templates.ts';
import {
  binValues,
  categoricalPValue,
  jensenShannonCorrected,
  lInfinity,
  quantile,
  withOverflowBins,
} from './distance.ts';

/** Training-side reference: what featurize saved for the model being served. */
export interface MonitorReference {
  featureNames: string[];
  /** Training-split histogram per feature (featurize's stats.json). */
  histograms: Record<string, { edges: number[]; counts: number[] }>;
  /** Training label counts (for prediction skew). */
  labelCounts?: Record<string, number>;
}

export interface MonitorThresholds {
  /** Hours in the recent window (the previous window is the same length before it). */
  window_hours: number;
  /** Fewer predictions than this in the recent window: "not enough data". */
  min_samples: number;
  /** Default Jensen-Shannon threshold for numeric features (skew and drift). */
  js_threshold: number;
  /** Per-feature overrides of `js_threshold`. */
  features: Record<string, number>;
  /** Significance level across all features (Bonferroni): a feature alerts only when its
   * divergence is both larger than its threshold and unlikely under "same distribution". */
  alpha: number;
  /** L-infinity threshold for the predicted-class distribution. */
  linf_threshold: number;
  /** Error-rate ceiling (errors / requests). */
  max_error_rate: number;
  /** p99 latency ceiling in milliseconds. */
  max_p99_ms: number;
  /** Input-anomaly rate ceiling per kind (promotion/<env>.yaml `serving.max_anomaly_rate`; default 0.05). */
  max_anomaly_rate?: number;
  /** Per-kind overrides of `max_anomaly_rate` (`serving.anomaly_rates`). */
  anomaly_rates?: Record<string, number>;
}

/** One anomaly kind in the recent window. */
export interface AnomalyRate {
  kind: string;
  severity: 'error' | 'warning';
  /** Requests with this kind (answered and refused). */
  count: number;
  /** Of those, refused (status `rejected`). */
  rejected: number;
  /** count / routed requests in the window. */
  rate: number;
  threshold: number;
  alert: boolean;
}

export const DEFAULT_THRESHOLDS: MonitorThresholds = {
  window_hours: 24,
  min_samples: 100,
  js_threshold: 0.2,
  features: {},
  alpha: 0.01,
  linf_threshold: 0.2,
  max_error_rate: 0.05,
  max_p99_ms: 250,
};

export interface FeatureReport {
  name: string;
  threshold: number;
  /** Jensen-Shannon divergence against training, bias-corrected for sample size (alerts use it). */
  skew: number;
  /** Uncorrected Jensen-Shannon divergence against training. */
  skewRaw: number;
  /** Recent against previous window, bias-corrected; null without enough previous data. */
  drift: number | null;
  driftRaw: number | null;
  skewAlert: boolean;
  driftAlert: boolean;
  /** Binned counts for plots: training, previous window, recent window (with overflow bins). */
  bins: { edges: number[]; training: number[]; previous: number[] | null; recent: number[] };
}

export interface MonitorReport {
  env: string;
  generatedAt: string;
  window: { from: string; to: string };
  previousWindow: { from: string; to: string };
  status: 'ok' | 'alert' | 'not-enough-data';
  /** False below `min_samples` answered predictions: distributions were not compared. */
  enoughData: boolean;
  /** One line per alert, e.g. `skew: mfcc_mean_3 JS 0.21 > 0.10`. */
  alerts: string[];
  volume: { recent: number; previous: number };
  latency: { p50: number; p99: number };
  errorRate: number;
  /** Input checks in the recent window: routed requests, and the rate of each anomaly kind seen. */
  anomalies: { requests: number; rejected: number; kinds: AnomalyRate[] };
  predictions: {
    recent: Record<string, number>;
    previous: Record<string, number>;
    training: Record<string, number>;
    skew: number | null;
    drift: number | null;
  };
  features: FeatureReport[];
}

/** Anomaly rates per kind over the routed requests (each request counts once per kind). */
function anomalyRates(
  served: PredictionLogEntry[],
  thresholds: MonitorThresholds,
): { requests: number; rejected: number; kinds: AnomalyRate[] } {
  const byKind = new Map<string, { severity: 'error' | 'warning'; count: number; rejected: number }>();
  for (const e of served) {
    const seen = new Set<string>();
    for (const a of e.anomalies ?? []) {
      if (seen.has(a.kind)) continue;
      seen.add(a.kind);
      const k = byKind.get(a.kind) ?? { severity: a.severity, count: 0, rejected: 0 };
      k.count++;
      if (e.status === 'rejected') k.rejected++;
      if (a.severity === 'error') k.severity = 'error';
      byKind.set(a.kind, k);
    }
  }
  const enough = served.length >= thresholds.min_samples;
  const kinds = [...byKind]
    .map(([kind, k]): AnomalyRate => {
      const rate = served.length ? k.count / served.length : 0;
      const threshold = thresholds.anomaly_rates?.[kind] ?? thresholds.max_anomaly_rate ?? 0.05;
      return { kind, ...k, rate, threshold, alert: enough && rate > threshold };
    })
    .sort((a, b) => b.rate - a.rate || (a.kind < b.kind ? -1 : 1));
  return { requests: served.length, rejected: served.filter((e) => e.status === 'rejected').length, kinds };
}

function countLabels(entries: PredictionLogEntry[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of entries) if (e.label) out[e.label] = (out[e.label] ?? 0) + 1;
  return out;
}

function column(entries: PredictionLogEntry[], index: number): number[] {
  const out: number[] = [];
  for (const e of entries) {
    const v = e.summary?.[index];
    if (v !== undefined && Number.isFinite(v)) out.push(v);
  }
  return out;
}

/**
 * Computes the monitoring report for `entries` (any order; filtered into the two windows
 * ending at `now`). Pure: no I/O.
 */
export function computeMonitorReport(
  env: string,
  entries: PredictionLogEntry[],
  reference: MonitorReference,
  thresholds: MonitorThresholds = DEFAULT_THRESHOLDS,
  now: Date = new Date(),
): MonitorReport {
  const w = thresholds.window_hours * 3600_000;
  const to = now.getTime();
  const from = to - w;
  const prevFrom = from - w;
  // A shadow step's mirrored predictions answered no one: the served traffic is the stable model's.
  const inRange = (e: PredictionLogEntry, a: number, b: number) => {
    const t = new Date(e.time).getTime();
    return t > a && t <= b && !isShadowEntry(e);
  };
  const recentAll = entries.filter((e) => inRange(e, from, to));
  const previousAll = entries.filter((e) => inRange(e, prevFrom, from));
  // Only answered predictions describe the served distribution; rejected requests (invalid)
  // and model errors count toward volume and error rate.
  const recent = recentAll.filter((e) => e.status === 'ok');
  const previous = previousAll.filter((e) => e.status === 'ok');
  const served = recentAll.filter((e) => e.status !== 'invalid');
  const anomalies = anomalyRates(served, thresholds);
  const errors = served.filter((e) => e.status === 'error').length;
  // BigQuery request logs carry no latency (NaN): the latency figures use the entries that do.
  const latencies = recent.map((e) => e.latencyMs).filter(Number.isFinite);
  const report: MonitorReport = {
    env,
    generatedAt: now.toISOString(),
    window: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    previousWindow: { from: new Date(prevFrom).toISOString(), to: new Date(from).toISOString() },
    status: 'ok',
    enoughData: recent.length >= thresholds.min_samples,
    alerts: [],
    volume: { recent: recentAll.length, previous: previousAll.length },
    latency: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) },
    errorRate: served.length > 0 ? errors / served.length : 0,
    anomalies,
    predictions: {
      recent: countLabels(recent),
      previous: countLabels(previous),
      training: reference.labelCounts ?? {},
      skew: null,
      drift: null,
    },
    features: [],
  };
  // Anomaly rates are judged over every routed request, so a window where most clips are
  // refused (few answered predictions) still alerts.
  for (const a of anomalies.kinds) {
    if (a.alert)
      report.alerts.push(
        `input anomaly: ${a.kind} in ${(a.rate * 100).toFixed(1)}% of requests > ${(a.threshold * 100).toFixed(1)}% (${a.rejected} rejected)`,
      );
  }
  if (!report.enoughData) {
    report.status = report.alerts.length > 0 ? 'alert' : 'not-enough-data';
    return report;
  }
  const enoughPrevious = previous.length >= thresholds.min_samples;
  const perFeatureAlpha = thresholds.alpha / Math.max(1, reference.featureNames.length);
  reference.featureNames.forEach((name, i) => {
    const hist = reference.histograms[name];
    if (!hist) return;
    const threshold = thresholds.features[name] ?? thresholds.js_threshold;
    const training = withOverflowBins(hist).counts;
    const recentBins = binValues(column(recent, i), hist.edges).counts;
    const previousBins = enoughPrevious ? binValues(column(previous, i), hist.edges).counts : null;
    const s = jensenShannonCorrected(training, recentBins);
    const d = previousBins ? jensenShannonCorrected(previousBins, recentBins) : null;
    const skew = s.corrected;
    const drift = d ? d.corrected : null;
    const f: FeatureReport = {
      name,
      threshold,
      skew,
      skewRaw: s.js,
      drift,
      driftRaw: d ? d.js : null,
      skewAlert: skew > threshold && s.pValue < perFeatureAlpha,
      driftAlert: d !== null && d.corrected > threshold && d.pValue < perFeatureAlpha,
      bins: { edges: hist.edges, training, previous: previousBins, recent: recentBins },
    };
    if (f.skewAlert) report.alerts.push(`skew: ${name} JS ${skew.toFixed(3)} > ${threshold}`);
    if (f.driftAlert) report.alerts.push(`drift: ${name} JS ${drift!.toFixed(3)} > ${threshold}`);
    report.features.push(f);
  });
  if (reference.labelCounts && Object.keys(reference.labelCounts).length > 0) {
    const skew = lInfinity(reference.labelCounts, report.predictions.recent);
    report.predictions.skew = skew;
    const p = categoricalPValue(reference.labelCounts, report.predictions.recent);
    if (skew > thresholds.linf_threshold && p < thresholds.alpha) {
      report.alerts.push(`skew: predicted class L∞ ${skew.toFixed(3)} > ${thresholds.linf_threshold}`);
    }
  }
  if (enoughPrevious) {
    const drift = lInfinity(report.predictions.previous, report.predictions.recent);
    report.predictions.drift = drift;
    const p = categoricalPValue(report.predictions.previous, report.predictions.recent);
    if (drift > thresholds.linf_threshold && p < thresholds.alpha) {
      report.alerts.push(`drift: predicted class L∞ ${drift.toFixed(3)} > ${thresholds.linf_threshold}`);
    }
  }
  if (report.errorRate > thresholds.max_error_rate) {
    report.alerts.push(
      `error rate ${(report.errorRate * 100).toFixed(1)}% > ${(thresholds.max_error_rate * 100).toFixed(1)}%`,
    );
  }
  if (report.latency.p99 > thresholds.max_p99_ms) {
    report.alerts.push(`p99 latency ${report.latency.p99.toFixed(0)} ms > ${thresholds.max_p99_ms} ms`);
  }
  report.status = report.alerts.length > 0 ? 'alert' : 'ok';
  return report;
}

/** The Markdown report (for the GitHub issue and the job summary). */
export function renderMonitorMarkdown(report: MonitorReport): string {
  const lines: string[] = [];
  const icon = report.status === 'alert' ? '🔴' : report.status === 'ok' ? '🟢' : '⚪';
  lines.push(`## ${icon} Monitoring ${report.env}: ${report.status}`);
  lines.push('');
  lines.push(
    `Window ${report.window.from} → ${report.window.to} (previous: from ${report.previousWindow.from}).`,
  );
  lines.push('');
  if (report.alerts.length > 0) {
    lines.push('### Alerts', '');
    for (const a of report.alerts) lines.push(`- ${a}`);
    lines.push('');
  }
  const an = report.anomalies;
  if (an.kinds.length > 0) {
    lines.push(
      `### Input anomalies (${an.rejected} of ${an.requests} requests rejected)`,
      '',
      '| kind | severity | requests | rejected | rate | threshold | |',
      '|---|---|---:|---:|---:|---:|---|',
    );
    for (const a of an.kinds) {
      lines.push(
        `| ${a.kind} | ${a.severity} | ${a.count} | ${a.rejected} | ${(a.rate * 100).toFixed(2)}% | ${(a.threshold * 100).toFixed(1)}% | ${a.alert ? '⚠️' : ''} |`,
      );
    }
    lines.push('');
  }
  if (!report.enoughData) {
    lines.push(
      `Not enough data: ${report.volume.recent} predictions in the window. No distribution alert raised.`,
    );
    return lines.join('\n') + '\n';
  }
  lines.push('| volume (recent / previous) | p50 ms | p99 ms | error rate |', '|---|---:|---:|---:|');
  lines.push(
    `| ${report.volume.recent} / ${report.volume.previous} | ${report.latency.p50.toFixed(1)} | ${report.latency.p99.toFixed(1)} | ${(report.errorRate * 100).toFixed(2)}% |`,
  );
  lines.push('');
  lines.push(
    `Predicted class: skew L∞ ${report.predictions.skew?.toFixed(3) ?? '—'}, drift L∞ ${report.predictions.drift?.toFixed(3) ?? '—'}`,
  );
  lines.push('');
  const worst = [...report.features].sort((a, b) => b.skew - a.skew).slice(0, 15);
  lines.push('| feature | skew JS | drift JS | threshold | |', '|---|---:|---:|---:|---|');
  for (const f of worst) {
    lines.push(
      `| ${f.name} | ${f.skew.toFixed(3)} | ${f.drift === null ? '—' : f.drift.toFixed(3)} | ${f.threshold} | ${f.skewAlert || f.driftAlert ? '⚠️' : ''} |`,
    );
  }
  lines.push('', `(${report.features.length} features checked; the 15 with the largest skew are shown.)`);
  return lines.join('\n') + '\n';
}

/** Vega-Lite spec: training vs recent serving distribution of the most skewed features. */
export function monitorPlotSpec(report: MonitorReport, top = 6): TopLevelSpec {
  return monitorHistogramsSpec(report.env, report.features, top);
}
