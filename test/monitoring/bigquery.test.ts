import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bigQueryClientDefaults, readBigQueryLogs } from '../../lib/monitoring/bigquery.ts';
import { policyLogSource, readLogs } from '../../lib/monitoring/logs.ts';
import {
  computeMonitorReport,
  DEFAULT_THRESHOLDS,
  type MonitorReference,
} from '../../lib/monitoring/monitor.ts';
import { parsePolicy } from '../../lib/environment/policy.ts';
import type { PredictionLogEntry } from '../../lib/serving/logs.ts';
import { createRng } from '../../lib/rng.ts';
import { FakeBigQuery } from '../support/fake-bigquery.ts';

const NOW = new Date('2026-11-20T12:00:00Z');
const HOUR = 3600_000;
const TABLE = 'bq://p.logs.request_response_logging';
const LABELS = ['angry', 'happy', 'sad'];

const reference: MonitorReference = {
  featureNames: ['f0', 'f1'],
  histograms: {
    f0: { edges: [0, 0.25, 0.5, 0.75, 1], counts: [25, 25, 25, 25] },
    f1: { edges: [0, 0.25, 0.5, 0.75, 1], counts: [25, 25, 25, 25] },
  },
  labelCounts: { angry: 30, happy: 40, sad: 30 },
};

/** Served predictions over the last `hours` hours; `shift` moves f1 towards 1 (drift). */
function predictions(n: number, hours: number, shift: number, seed: number) {
  const r = createRng(seed);
  const rng = () => r.next();
  return Array.from({ length: n }, (_, i) => {
    const features = [rng(), Math.min(0.999, rng() * (1 - shift) + shift)];
    const label = LABELS[Math.floor(rng() * 3)];
    const scores = Object.fromEntries(LABELS.map((l) => [l, l === label ? 0.8 : 0.1]));
    const time = new Date(NOW.getTime() - hours * HOUR + ((i + 0.5) / n) * hours * HOUR).toISOString();
    return { time, features, label, scores, deployedModelId: '42' };
  });
}

let fake: FakeBigQuery;
let tmp: string;

beforeAll(async () => {
  fake = await new FakeBigQuery().start();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bq-'));
});
afterAll(async () => {
  bigQueryClientDefaults.options = undefined;
  await fake.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  fake.datasets.clear();
  fake.requests.length = 0;
  bigQueryClientDefaults.options = fake.clientOptions();
});

describe('bigquery request logs', () => {
  it('a BigQuery-logged window gives the same monitor report as the same predictions read from JSONL', async () => {
    // Older than both windows, the previous window, the recent (drifted) window.
    const served = [
      ...predictions(10, 100, 0, 1).map((p) => ({
        ...p,
        time: new Date(Date.parse(p.time) - 200 * HOUR).toISOString(),
      })),
      ...predictions(80, 24, 0, 2).map((p) => ({
        ...p,
        time: new Date(Date.parse(p.time) - 24 * HOUR).toISOString(),
      })),
      ...predictions(80, 24, 0.6, 3),
    ];
    const table = fake.table('p', 'logs', 'request_response_logging');
    // Vertex writes one row per request; a request may hold several instances.
    for (let i = 0; i < served.length; i += 2) {
      const batch = served.slice(i, i + 2);
      table.rows.push({
        endpoint: 'projects/p/locations/us-central1/endpoints/1',
        deployed_model_id: '42',
        logging_time: batch[0].time,
        request_id: String(1000 + i),
        request_payload: batch.map((b) => JSON.stringify({ features: b.features })),
        response_payload: batch.map((b) => JSON.stringify({ label: b.label, scores: b.scores })),
      });
    }
    // The same predictions as the local server logs them (batch members share the request time).
    const dir = path.join(tmp, 'jsonl');
    fs.mkdirSync(dir, { recursive: true });
    const local: PredictionLogEntry[] = served.map((b, i) => ({
      time: served[i - (i % 2)].time,
      env: 'prod',
      deployedModelId: '42',
      status: 'ok',
      label: b.label,
      scores: b.scores,
      summary: b.features,
      latencyMs: 5 + (i % 7),
    }));
    fs.writeFileSync(
      path.join(dir, 'predictions-20261120T000000000Z-1-1.jsonl'),
      local.map((e) => JSON.stringify(e)).join('\n') + '\n',
    );
    const thresholds = { ...DEFAULT_THRESHOLDS, window_hours: 24, min_samples: 50 };
    const since = new Date(NOW.getTime() - 48 * HOUR);
    const fromBq = await readLogs(TABLE, { since, env: 'prod' });
    expect(fromBq).toHaveLength(160);
    const fromJsonl = await readLogs(dir);
    const a = computeMonitorReport('prod', fromBq, reference, thresholds, NOW);
    const b = computeMonitorReport('prod', fromJsonl, reference, thresholds, NOW);
    // The table has no latency column: everything but the latency figures is the same.
    const { latency: la, ...restA } = a;
    const { latency: lb, ...restB } = b;
    expect(restA).toEqual(restB);
    expect(a.status).toBe('alert');
    expect(a.alerts.some((x) => x.includes('f1'))).toBe(true);
    expect(Number.isNaN(la.p99)).toBe(true);
    expect(lb.p99).toBeGreaterThan(0);
    // The window was a parameter: the old rows never left the fake.
    expect(fake.requests.filter((r) => r.startsWith('POST'))).toHaveLength(1);
  });

  it('reads page by page with pageToken', async () => {
    const table = fake.table('p', 'logs', 'request_response_logging');
    for (const [i, p] of predictions(25, 1, 0, 4).entries())
      table.rows.push({
        deployed_model_id: '7',
        logging_time: p.time,
        request_id: String(i),
        request_payload: [JSON.stringify({ audio: 'AAAA' })],
        response_payload: [JSON.stringify({ label: p.label, scores: p.scores })],
      });
    const entries = await readBigQueryLogs(TABLE, { pageSize: 10, env: 'dev' });
    expect(entries).toHaveLength(25);
    expect(entries[0]).toMatchObject({ env: 'dev', deployedModelId: '7', status: 'ok' });
    expect(entries[0].summary).toBeUndefined();
    expect(fake.requests.filter((r) => r.includes('/queries/'))).toHaveLength(3);
    expect(entries.map((e) => e.time)).toEqual([...entries.map((e) => e.time)].sort());
  });

  it('waits for a query still running (jobComplete false) instead of reading an empty window', async () => {
    const table = fake.table('p', 'logs', 'request_response_logging');
    for (const [i, p] of predictions(5, 1, 0, 5).entries())
      table.rows.push({
        deployed_model_id: '7',
        logging_time: p.time,
        request_id: String(i),
        request_payload: [JSON.stringify({ features: p.features })],
        response_payload: [JSON.stringify({ label: p.label, scores: p.scores })],
      });
    fake.pendingPolls = 2;
    try {
      const entries = await readBigQueryLogs(TABLE, { pageSize: 2, env: 'dev' });
      expect(entries).toHaveLength(5);
      // Two polls while running, then three pages.
      expect(fake.requests.filter((r) => r.includes('/queries/'))).toHaveLength(5);
    } finally {
      fake.pendingPolls = 0;
    }
  });

  it('a payload element that is not JSON drops its own pair and keeps the others paired', async () => {
    const table = fake.table('p', 'logs', 'request_response_logging');
    table.rows.push({
      deployed_model_id: '7',
      logging_time: NOW.toISOString(),
      request_id: '1',
      request_payload: ['{"features": [0.1, 0.2', JSON.stringify({ features: [0.3, 0.4] })],
      response_payload: [
        JSON.stringify({ label: 'sad', scores: { sad: 0.9 } }),
        JSON.stringify({ label: 'happy', scores: { happy: 0.9 } }),
      ],
    });
    const entries = await readBigQueryLogs(TABLE, { env: 'dev' });
    expect(entries.map((e) => [e.label, e.summary])).toEqual([
      ['sad', undefined],
      ['happy', [0.3, 0.4]],
    ]);
  });

  it.each([
    [
      'a missing dataset',
      undefined,
      /^promotion\/prod\.yaml: endpoint\.request_logging\.table: cannot read BigQuery logs bq:\/\/p\.logs\.request_response_logging "Not found: Dataset p:logs was not found in location US"\. Create the dataset/,
    ],
    [
      'a 403',
      403,
      /^promotion\/prod\.yaml: endpoint\.request_logging\.table: cannot read BigQuery logs .* "Access Denied: .*"\. Grant the caller roles\/bigquery\.dataViewer/,
    ],
  ])('%s is one line naming the key and the fix', async (_, fault, want) => {
    if (fault) {
      fake.table('p', 'logs', 'request_response_logging');
      fake.faults.set('jobs.insert', fault);
    }
    const policy = parsePolicy(
      [
        'branch: prod',
        'endpoint:',
        '  kind: vertex',
        '  project: p',
        '  endpoint: "1"',
        '  model: m',
        '  image: img',
        '  request_logging: { table: "bq://p.logs.request_response_logging", sampling_rate: 0.5 }',
      ].join('\n'),
      'promotion/prod.yaml',
    );
    const src = policyLogSource(policy, 'prod')!;
    const err = await readLogs(src.source, { where: src.where }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(want);
    expect((err as Error).message.split('\n')).toHaveLength(1);
  });

  it('a malformed table is refused where the policy is read', () => {
    expect(() =>
      parsePolicy(
        'branch: prod\nendpoint: {kind: vertex, project: p, endpoint: "1", model: m, image: i, request_logging: {table: "p.logs"}}\n',
        'promotion/prod.yaml',
      ),
    ).toThrow(/request_logging\.table.*bq:\/\/project\.dataset\.table/);
  });
});
