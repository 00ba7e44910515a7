/**
 * The dashboard's pages, each a function of the snapshot (see data.ts) to a {@link Page}. Every
 * value from git, params, records or reports passes through `esc` or `jsonForScript`.
 */
import type { ExpRow } from '../experiments/show.ts';
import { shapeTable } from '../experiments/show.ts';
import { monitorPlotSpec } from '../monitoring/monitor.ts';
import { describeCanaryStatus } from '../canary/status.ts';
import type { TopLevelSpec } from 'vega-lite';
import type { Dashboard, LineageView } from './data.ts';
import { esc, lineageHref, num, renderPage, shortHash, table, type Page } from './html.ts';
import { lineageSvg } from './lineage-svg.ts';
import { COMPARE_SCRIPT, EXPERIMENTS_SCRIPT } from './client.ts';
import type { Comparison } from './compare.ts';
import { specToSvg } from './svg.ts';

const KEY_METRICS = ['accuracy', 'f1_macro', 'mcc'];

function footer(d: Pick<Dashboard, 'generatedAt'>): string {
  return `<p class="muted">Read from git and .lockstep/ at ${esc(d.generatedAt)}. Read-only.</p>`;
}

/** Registry: every commit that pins a model, its metrics, gate, and where it is or was. */
export function registryPage(d: Dashboard): Page {
  const metricKeys = KEY_METRICS.filter((k) => d.registry.some((e) => e.metrics[k] !== undefined));
  const rows = d.registry.map((e) => [
    `<a href="${lineageHref(e.commit)}" class="lineage">${esc(e.commit.slice(0, 8))}</a>`,
    esc(e.date.slice(0, 16).replace('T', ' ')),
    esc(e.subject),
    shortHash(e.model.hash),
    ...metricKeys.map((k) => num(e.metrics[k])),
    `<span class="${esc(e.gate)}">${esc(e.gate)}</span>`,
    e.environments
      .map((p) => `<span class="${p.state}">${esc(p.state === 'current' ? p.env : `(${p.env})`)}</span>`)
      .join(' '),
  ]);
  const body =
    `<h1>Registry</h1><p>${d.registry.length} commits pin a model. Environments in parentheses held it before.</p>` +
    (rows.length === 0
      ? '<p>No commit pins a model yet. Run <code>lockstep repro</code> and commit the lockfile.</p>'
      : `<div class="wrap">${table(
          ['commit', 'date', 'subject', 'model', ...metricKeys.map(esc), 'gate', 'environments'],
          rows,
          ' id="registry"',
        )}</div>`) +
    footer(d);
  return renderPage({ page: 'registry', title: 'Registry', body });
}

function splitTable(view: Dashboard['environments'][number]): string {
  const state = view.endpoint;
  if (!view.policy) return '';
  if (view.policy.endpoint.kind !== 'local')
    return `<p>Vertex AI endpoint <code>${esc(view.policy.endpoint.endpoint)}</code> (${esc(view.policy.endpoint.project)}/${esc(view.policy.endpoint.region)}): run <code>lockstep endpoint describe --env ${esc(view.env)}</code> for its live split.</p>`;
  if (!state || state.deployedModels.length === 0) return '<p>Nothing deployed on the local endpoint.</p>';
  return table(
    ['deployed model', 'model', 'commit', 'traffic', 'deployed at'],
    state.deployedModels.map((m) => [
      esc(m.id),
      shortHash(m.model.hash),
      m.model.commit ? `<a href="${lineageHref(m.model.commit)}">${esc(m.model.commit.slice(0, 8))}</a>` : '',
      `${esc(state.trafficSplit[m.id] ?? 0)}%`,
      esc(m.deployedAt),
    ]),
    ' class="split"',
  );
}

/** Environments: what serves, the traffic split, the canary step and its reasons, history. */
export function environmentsPage(d: Dashboard): Page {
  const sections = d.environments.map((v) => {
    const canary = v.endpoint?.canary;
    const steps = v.policy?.canary.steps ?? [];
    const canaryRecords = v.records
      .filter((r) => r.source === 'canary')
      .slice(-5)
      .reverse();
    const current = v.changes.find((c) => c.current);
    return (
      `<section class="card env" id="env-${esc(v.env)}"><h2>${esc(v.env)} <span class="muted">branch ${esc(v.branch)}</span></h2>` +
      (v.problem ? `<p class="alert">${esc(v.problem)}</p>` : '') +
      (current
        ? `<p>Pinned at the branch head: model ${shortHash(current.model)} from <a href="${lineageHref(current.commit)}">${esc(current.commit.slice(0, 8))}</a> ${esc(current.subject)}</p>`
        : '<p>No model pinned on this branch.</p>') +
      splitTable(v) +
      (canary
        ? `<p class="canary">Canary ${esc(describeCanaryStatus(canary, steps))}</p>`
        : `<p class="muted">No canary in progress. Steps: ${esc(steps.join(' → '))}%</p>`) +
      (canaryRecords.length
        ? `<h3>Last canary reasons</h3>${table(
            ['at', 'status', 'step', 'traffic', 'reason'],
            canaryRecords.map((r) => [
              esc(r.at ?? ''),
              esc(r.status),
              esc(r.step ?? ''),
              r.percent === undefined ? '' : `${esc(r.percent)}%`,
              esc(r.detail ?? ''),
            ]),
          )}`
        : '') +
      `<h3>History</h3>` +
      (v.changes.length
        ? table(
            ['commit', 'date', 'subject', 'model', 'accuracy', 'tags'],
            v.changes.map((c) => [
              `<a href="${lineageHref(c.commit)}">${esc(c.commit.slice(0, 8))}</a>${c.current ? ' <strong>current</strong>' : ''}`,
              esc(c.date.slice(0, 16).replace('T', ' ')),
              esc(c.subject),
              shortHash(c.model),
              num(c.metrics.accuracy),
              esc(c.tags.join(' ')),
            ]),
          )
        : '<p class="muted">No model changes on this branch.</p>') +
      (v.records.length
        ? `<details><summary>${v.records.length} deployment records</summary>${table(
            ['at', 'source', 'status', 'model', 'detail'],
            v.records
              .slice()
              .reverse()
              .map((r) => [
                esc(r.at ?? ''),
                esc(r.source),
                esc(r.status),
                shortHash(r.model),
                esc(r.detail ?? ''),
              ]),
          )}</details>`
        : '') +
      '</section>'
    );
  });
  return renderPage({
    page: 'environments',
    title: 'Environments',
    body: `<h1>Environments</h1>${sections.join('')}${footer(d)}`,
  });
}

/**
 * Rows the experiments table shows at once (in the current order and filter); every row is
 * sorted and filtered, and "Show all rows" lifts the limit.
 */
export const EXPERIMENT_ROWS_SHOWN = 200;

/** Sortable values of one experiment row, in column order (null when missing). */
type Cell = string | number | null;

function cellOf(v: unknown): Cell {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number' || typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Experiments: one sortable, filterable table; rows can be picked to compare. */
export function experimentsPage(d: Dashboard): Page {
  const shaped = shapeTable(d.experiments);
  const cols = [
    { key: 'name', num: false },
    { key: 'kind', num: false },
    { key: 'status', num: false },
    { key: 'commit', num: false },
    ...shaped.params.map((k) => ({
      key: k,
      num: d.experiments.some((r) => typeof r.params[k] === 'number'),
    })),
    ...shaped.metrics.map((k) => ({ key: k, num: true })),
  ];
  const values: Cell[][] = d.experiments.map((r) => [
    r.name,
    r.kind,
    r.status,
    r.commit.slice(0, 8),
    ...shaped.params.map((k) => cellOf(r.params[k])),
    ...shaped.metrics.map((k) => cellOf(r.metrics[k])),
  ]);
  const text = values.map((v) => v.slice(0, 4).join(' ').toLowerCase());
  const head = cols
    .map((c, i) => `<th data-col="${i}" title="sort by ${esc(c.key)}">${esc(c.key)}</th>`)
    .join('');
  const body = values
    .slice(0, EXPERIMENT_ROWS_SHOWN)
    .map(
      (v, i) =>
        `<tr><td><input type="checkbox" class="sel" value="${esc(d.experiments[i]!.name)}" aria-label="select ${esc(d.experiments[i]!.name)}"></td>${v
          .map(
            (c, j) =>
              `<td${cols[j]!.num ? ' class="num"' : ''}>${typeof c === 'number' ? num(c) : esc(c ?? '')}</td>`,
          )
          .join('')}</tr>`,
    )
    .join('');
  const html =
    `<h1>Experiments</h1><div class="toolbar"><input type="search" id="filter" placeholder="filter: text, or key>value (accuracy>0.8 train.lr=0.001)" aria-label="filter">` +
    `<button id="compare" disabled>Compare selected</button><span id="picked" class="muted"></span><span id="count" class="muted">${esc(
      `${values.length} rows${values.length > EXPERIMENT_ROWS_SHOWN ? `, first ${EXPERIMENT_ROWS_SHOWN} shown` : ''}`,
    )}</span></div>` +
    `<div class="wrap"><table id="exps"><thead><tr><th></th>${head}</tr></thead><tbody>${body}</tbody></table></div>` +
    `<p><button id="more"${values.length > EXPERIMENT_ROWS_SHOWN ? '' : ' hidden'}>Show all rows</button></p>${footer(d)}`;
  return renderPage({
    page: 'experiments',
    title: 'Experiments',
    body: html,
    data: { cols, rows: values, text, limit: EXPERIMENT_ROWS_SHOWN },
    script: EXPERIMENTS_SCRIPT,
  });
}

function showValue(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return num(v);
  return esc(typeof v === 'string' ? v : JSON.stringify(v));
}

/** The compare view of a {@link Comparison}, with its chart rendered to SVG on the server. */
export async function comparePage(c: Comparison): Promise<Page> {
  const head = ['key', ...c.names.map(esc)];
  const svg = await specToSvg(c.spec as TopLevelSpec);
  const body =
    `<h1>Compare ${c.names.map(esc).join(', ')}</h1><div id="comparison">` +
    `<p>Commits: ${c.commits.map((x) => shortHash(x, 8)).join(' ')}</p>` +
    `<div class="chart">${svg}</div>` +
    `<h2>Params</h2>${table(
      head,
      c.params.map((p) => [
        `${esc(p.key)}${p.differs ? ' <strong>≠</strong>' : ''}`,
        ...p.values.map(showValue),
      ]),
      ' class="params"',
    )}` +
    `<h2>Metrics</h2>${table(
      head,
      c.metrics.map((m) => [esc(m.key), ...m.values.map((v) => num(v))]),
      ' class="metrics"',
    )}</div><p><a href="experiments.html">back to experiments</a></p>`;
  return renderPage({ page: 'compare', title: `Compare ${c.names.join(', ')}`, body });
}

/** The static export's compare page: built in the browser from the embedded rows. */
export function staticComparePage(rows: ExpRow[]): Page {
  return renderPage({
    page: 'compare',
    title: 'Compare',
    body: '<h1>Compare</h1><div id="comparison"></div><p class="muted">Charts are drawn by <code>lockstep ui</code> (served); this static copy shows the tables.</p><p><a href="experiments.html">back to experiments</a></p>',
    data: { rows: rows.map((r) => ({ name: r.name, params: r.params, metrics: r.metrics })) },
    script: COMPARE_SCRIPT,
  });
}

/** Lineage of one commit: the stage DAG with hashes and why each stage ran, data and params. */
export function lineagePage(l: LineageView): Page {
  const stages = Object.keys(l.code);
  const body =
    `<h1>Lineage of ${esc(l.commit.slice(0, 8))}</h1><p>${esc(l.date)} ${esc(l.subject)}</p>` +
    `<p>Model ${shortHash(l.model)} · commit <code>${esc(l.commit)}</code></p>` +
    `<div class="wrap">${lineageSvg(l)}</div>` +
    `<h2>Stages</h2>${table(
      ['stage', 'code', 'outs', 'why it ran here'],
      stages.map((s) => [
        esc(s),
        shortHash(l.code[s]),
        (l.outs[s] ?? []).map((o) => `${esc(o.path)} ${shortHash(o.hash)}`).join('<br>'),
        esc(l.reasons[s]?.reason ?? ''),
      ]),
      ' id="stages"',
    )}` +
    `<h2>Data</h2>${table(
      ['path', 'hash'],
      Object.entries(l.data).map(([p, h]) => [esc(p), shortHash(h)]),
    )}` +
    `<h2>Params</h2>${table(
      ['key', 'value'],
      Object.entries(l.params).map(([k, v]) => [esc(k), showValue(v)]),
    )}<p><a href="index.html">back to the registry</a></p>`;
  return renderPage({ page: 'lineage', title: `Lineage ${l.commit.slice(0, 8)}`, body });
}

/** Monitoring: the last report `lockstep monitor` wrote for each environment, with its chart. */
export async function monitoringPage(d: Dashboard): Promise<Page> {
  const sections = await Promise.all(
    d.monitoring.map(async (m) => {
      const r = m.report;
      const head = `<section class="card monitor" id="monitor-${esc(m.env)}"><h2>${esc(m.env)}</h2>`;
      if (!r)
        return (
          head +
          (m.problem
            ? `<p class="alert">${esc(m.problem)}</p>`
            : `<p class="muted">No report at ${esc(m.file)}. Run <code>lockstep monitor --env ${esc(m.env)}</code>.</p>`) +
          '</section>'
        );
      const chart =
        r.features.length > 0 ? await specToSvg(monitorPlotSpec(r) as unknown as TopLevelSpec) : '';
      return (
        head +
        `<p>Status <span class="${r.status === 'alert' ? 'alert' : 'ok'}">${esc(r.status)}</span> · window ${esc(r.window.from)} → ${esc(r.window.to)} · ${esc(r.volume.recent)} predictions (previous window ${esc(r.volume.previous)}) · p50 ${esc(num(r.latency.p50))} ms, p99 ${esc(num(r.latency.p99))} ms · error rate ${esc(num(r.errorRate))}</p>` +
        (r.alerts.length
          ? `<ul>${r.alerts.map((a) => `<li class="alert">${esc(a)}</li>`).join('')}</ul>`
          : '') +
        `<p>Prediction skew ${esc(num(r.predictions.skew ?? undefined))}, drift ${esc(num(r.predictions.drift ?? undefined))}</p>` +
        (r.features.length
          ? table(
              ['feature', 'skew', 'drift', 'threshold', 'alert'],
              r.features
                .slice(0, 20)
                .map((f) => [
                  esc(f.name),
                  num(f.skew),
                  num(f.drift ?? undefined),
                  num(f.threshold),
                  f.skewAlert || f.driftAlert ? '<span class="alert">yes</span>' : '',
                ]),
            )
          : '') +
        `<div class="chart">${chart}</div></section>`
      );
    }),
  );
  return renderPage({
    page: 'monitoring',
    title: 'Monitoring',
    body: `<h1>Monitoring</h1>${sections.join('')}${footer(d)}`,
  });
}
