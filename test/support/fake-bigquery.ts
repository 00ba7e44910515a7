/**
 * A local fake of the BigQuery v2 REST API for `@google-cloud/bigquery` pointed at it with
 * `apiEndpoint: 'http://127.0.0.1:PORT'`: datasets and tables held in memory (rows as JSON),
 * jobs.insert / jobs.get / jobs.query, jobs.getQueryResults with `maxResults` and opaque
 * `pageToken` paging, tabledata.list. Queries are the one shape lockstep sends (SELECT columns
 * FROM `p.d.t` [WHERE logging_time >= @since AND logging_time < @until] ORDER BY ...) with named
 * TIMESTAMP parameters; anything else is a 400 invalidQuery. Errors have the real service's
 * JSON shape (`{error: {code, message, errors: [{message, domain, reason}], status}}`):
 * 404 notFound for a missing dataset or table, 403 accessDenied when injected.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

type Json = Record<string, unknown>;

export interface FakeField {
  name: string;
  type: 'STRING' | 'TIMESTAMP' | 'NUMERIC' | 'INTEGER';
  mode?: 'NULLABLE' | 'REQUIRED' | 'REPEATED';
}

/** The columns Vertex AI request-response logging writes. */
export const VERTEX_LOG_SCHEMA: FakeField[] = [
  { name: 'endpoint', type: 'STRING' },
  { name: 'deployed_model_id', type: 'STRING' },
  { name: 'logging_time', type: 'TIMESTAMP' },
  { name: 'request_id', type: 'NUMERIC' },
  { name: 'request_payload', type: 'STRING', mode: 'REPEATED' },
  { name: 'response_payload', type: 'STRING', mode: 'REPEATED' },
];

interface Table {
  schema: FakeField[];
  rows: Json[];
}

interface Job {
  id: string;
  projectId: string;
  fields: FakeField[];
  rows: Json[];
  query: string;
  /** getQueryResults calls still to answer `jobComplete: false` (the query is running). */
  pending: number;
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
};

export class FakeBigQuery {
  /** `project.dataset` -> table name -> table. */
  readonly datasets = new Map<string, Map<string, Table>>();
  readonly jobs = new Map<string, Job>();
  /** `METHOD path` of every request. */
  readonly requests: string[] = [];
  /** Method (`jobs.insert`, `jobs.getQueryResults`, ...) -> status to answer once (403 / 404). */
  readonly faults = new Map<string, number>();
  /**
   * How many getQueryResults calls a new query job answers with `jobComplete: false` and no rows
   * before its results are ready, as the real service does for a query still running after the
   * call's timeoutMs (10 s by default).
   */
  pendingPolls = 0;
  private server!: http.Server;
  private nextJob = 1;
  port = 0;

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        try {
          const out = this.handle(req.method!, req.url!, body);
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
        } catch (err) {
          const e = err instanceof HttpError ? err : new HttpError(500, 'backendError', String(err));
          res.writeHead(e.code, { 'content-type': 'application/json; charset=UTF-8' }).end(
            JSON.stringify({
              error: {
                code: e.code,
                message: e.message,
                errors: [{ message: e.message, domain: 'global', reason: e.reason }],
                status: STATUS[e.code] ?? 'INTERNAL',
              },
            }),
          );
        }
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Options for `new BigQuery(...)`: the endpoint, and an auth client (the google-auth-library
   * @google-cloud/common uses) holding a fake token, so no credential lookup leaves 127.0.0.1.
   */
  clientOptions(): Record<string, unknown> {
    const require = createRequire(import.meta.url);
    const common = require.resolve('@google-cloud/common', {
      paths: [path.dirname(require.resolve('@google-cloud/bigquery'))],
    });
    const { OAuth2Client } = createRequire(common)('google-auth-library');
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'fake-token', expiry_date: Date.now() + 3_600_000 });
    return { apiEndpoint: `http://127.0.0.1:${this.port}`, authClient };
  }

  /** Creates (or returns) a table with `schema`. */
  table(project: string, dataset: string, table: string, schema: FakeField[] = VERTEX_LOG_SCHEMA): Table {
    const key = `${project}.${dataset}`;
    const tables = this.datasets.get(key) ?? new Map<string, Table>();
    this.datasets.set(key, tables);
    const t = tables.get(table) ?? { schema, rows: [] };
    tables.set(table, t);
    return t;
  }

  private fault(method: string, project: string): void {
    const code = this.faults.get(method);
    if (!code) return;
    this.faults.delete(method);
    if (code === 403)
      throw new HttpError(
        403,
        'accessDenied',
        `Access Denied: Project ${project}: User does not have bigquery.jobs.create permission in project ${project}.`,
      );
    throw new HttpError(code, 'backendError', `injected ${code} in ${method}`);
  }

  private lookup(project: string, dataset: string, table: string): Table {
    const tables = this.datasets.get(`${project}.${dataset}`);
    if (!tables)
      throw new HttpError(
        404,
        'notFound',
        `Not found: Dataset ${project}:${dataset} was not found in location US`,
      );
    const t = tables.get(table);
    if (!t)
      throw new HttpError(
        404,
        'notFound',
        `Not found: Table ${project}:${dataset}.${table} was not found in location US`,
      );
    return t;
  }

  /** Runs the one supported query shape. */
  private run(project: string, config: Json): Job {
    const query = String(config.query ?? '');
    if (config.useLegacySql !== false)
      throw new HttpError(
        400,
        'invalidQuery',
        'Legacy SQL is not supported by this fake; set useLegacySql: false',
      );
    const m =
      /^SELECT ([\w, ]+)\nFROM `([^.`]+)\.([^.`]+)\.([^.`]+)`(?:\nWHERE (.+))?\nORDER BY ([\w, ]+)$/s.exec(
        query,
      );
    if (!m)
      throw new HttpError(400, 'invalidQuery', `Syntax error: unsupported query: ${query.slice(0, 80)}`);
    const [, cols, p, d, t, where, order] = m;
    const table = this.lookup(p, d, t);
    const params = new Map<string, number>();
    for (const qp of (config.queryParameters ?? []) as Json[]) {
      const type = (qp.parameterType as Json | undefined)?.type;
      const value = (qp.parameterValue as Json | undefined)?.value;
      if (type !== 'TIMESTAMP' || typeof value !== 'string' || Number.isNaN(Date.parse(value)))
        throw new HttpError(400, 'invalidQuery', `Query parameter ${String(qp.name)}: expected a TIMESTAMP`);
      params.set(String(qp.name), Date.parse(value));
    }
    const tests: ((row: Json) => boolean)[] = [];
    for (const cond of where ? where.split(' AND ') : []) {
      const c = /^logging_time (>=|<) @(\w+)$/.exec(cond);
      if (!c) throw new HttpError(400, 'invalidQuery', `Unsupported condition: ${cond}`);
      const v = params.get(c[2]);
      if (v === undefined) throw new HttpError(400, 'invalidQuery', `Query parameter '${c[2]}' not found`);
      tests.push((row) => {
        const time = Date.parse(row.logging_time as string);
        return c[1] === '>=' ? time >= v : time < v;
      });
    }
    const names = cols.split(',').map((s) => s.trim());
    const fields = names.map((n) => {
      const f = table.schema.find((x) => x.name === n);
      if (!f) throw new HttpError(400, 'invalidQuery', `Unrecognized name: ${n}`);
      return f;
    });
    const keys = order.split(',').map((s) => s.trim());
    const rows = table.rows
      .filter((r) => tests.every((test) => test(r)))
      .sort((a, b) => {
        for (const k of keys) {
          const x = k === 'logging_time' ? Date.parse(a[k] as string) : Number(a[k]);
          const y = k === 'logging_time' ? Date.parse(b[k] as string) : Number(b[k]);
          if (x !== y) return x - y;
        }
        return 0;
      });
    const id = `job_${this.nextJob++}`;
    const job: Job = { id, projectId: project, fields, rows, query, pending: this.pendingPolls };
    this.jobs.set(id, job);
    return job;
  }

  private encode(job: Job, row: Json, int64Timestamps: boolean): Json {
    const cell = (f: FakeField, v: unknown): unknown => {
      if (v === null || v === undefined) return null;
      if (f.type === 'TIMESTAMP') {
        const ms = Date.parse(v as string);
        return int64Timestamps ? String(ms * 1000) : String(ms / 1000);
      }
      return String(v);
    };
    return {
      f: job.fields.map((f) => ({
        v:
          f.mode === 'REPEATED'
            ? ((row[f.name] as unknown[] | undefined) ?? []).map((x) => ({ v: cell(f, x) }))
            : cell(f, row[f.name]),
      })),
    };
  }

  private jobResource(job: Job): Json {
    return {
      kind: 'bigquery#job',
      id: `${job.projectId}:US.${job.id}`,
      jobReference: { projectId: job.projectId, jobId: job.id, location: 'US' },
      configuration: { query: { query: job.query, useLegacySql: false }, jobType: 'QUERY' },
      status: { state: job.pending > 0 ? 'RUNNING' : 'DONE' },
      statistics: { query: { totalBytesProcessed: '0' } },
    };
  }

  private results(job: Job, url: URL): Json {
    if (job.pending > 0) {
      job.pending--;
      // Still running: no schema, no rows, no totalRows, no pageToken.
      return {
        kind: 'bigquery#getQueryResultsResponse',
        jobReference: { projectId: job.projectId, jobId: job.id, location: 'US' },
        jobComplete: false,
      };
    }
    const max = Number(url.searchParams.get('maxResults') ?? job.rows.length);
    const token = url.searchParams.get('pageToken');
    const start = token ? Number(Buffer.from(token, 'base64url').toString()) : 0;
    if (!Number.isInteger(start) || start < 0 || start > job.rows.length)
      throw new HttpError(400, 'invalid', `Invalid page token: ${token}`);
    const int64 = url.searchParams.get('formatOptions.useInt64Timestamp') === 'true';
    const end = Math.min(job.rows.length, start + (max > 0 ? max : job.rows.length));
    return {
      kind: 'bigquery#getQueryResultsResponse',
      jobReference: { projectId: job.projectId, jobId: job.id, location: 'US' },
      schema: { fields: job.fields.map((f) => ({ name: f.name, type: f.type, mode: f.mode ?? 'NULLABLE' })) },
      totalRows: String(job.rows.length),
      rows: job.rows.slice(start, end).map((r) => this.encode(job, r, int64)),
      ...(end < job.rows.length ? { pageToken: Buffer.from(String(end)).toString('base64url') } : {}),
      jobComplete: true,
      cacheHit: false,
    };
  }

  private handle(method: string, rawUrl: string, text: string): unknown {
    const url = new URL(rawUrl, 'http://x');
    const p = decodeURIComponent(url.pathname);
    this.requests.push(`${method} ${p}`);
    let body: Json = {};
    if (text) {
      try {
        body = JSON.parse(text) as Json;
      } catch {
        throw new HttpError(400, 'parseError', 'Parse Error');
      }
    }
    let m: RegExpMatchArray | null;
    if (!p.startsWith('/bigquery/v2/'))
      throw new HttpError(404, 'notFound', `Not found: ${p} (paths start with /bigquery/v2/)`);
    if (method === 'POST' && (m = p.match(/^\/bigquery\/v2\/projects\/([^/]+)\/jobs$/))) {
      this.fault('jobs.insert', m[1]);
      const config = ((body.configuration as Json | undefined)?.query ?? undefined) as Json | undefined;
      if (!config) throw new HttpError(400, 'invalid', 'Required parameter is missing: configuration.query');
      const job = this.run(m[1], config);
      const ref = body.jobReference as Json | undefined;
      if (typeof ref?.jobId === 'string') {
        if (this.jobs.has(ref.jobId))
          throw new HttpError(409, 'duplicate', `Already Exists: Job ${m[1]}:US.${ref.jobId}`);
        this.jobs.delete(job.id);
        job.id = ref.jobId;
        this.jobs.set(job.id, job);
      }
      return this.jobResource(job);
    }
    if (method === 'POST' && (m = p.match(/^\/bigquery\/v2\/projects\/([^/]+)\/queries$/))) {
      this.fault('jobs.query', m[1]);
      const job = this.run(m[1], body);
      const q = new URLSearchParams();
      if (body.maxResults !== undefined) q.set('maxResults', String(body.maxResults));
      return { ...this.results(job, new URL(`http://x/?${q}`)), kind: 'bigquery#queryResponse' };
    }
    if (method === 'GET' && (m = p.match(/^\/bigquery\/v2\/projects\/([^/]+)\/jobs\/([^/]+)$/))) {
      const job = this.jobs.get(m[2]);
      if (!job) throw new HttpError(404, 'notFound', `Not found: Job ${m[1]}:US.${m[2]}`);
      return this.jobResource(job);
    }
    if (method === 'GET' && (m = p.match(/^\/bigquery\/v2\/projects\/([^/]+)\/queries\/([^/]+)$/))) {
      this.fault('jobs.getQueryResults', m[1]);
      const job = this.jobs.get(m[2]);
      if (!job) throw new HttpError(404, 'notFound', `Not found: Job ${m[1]}:US.${m[2]}`);
      return this.results(job, url);
    }
    if (
      method === 'GET' &&
      (m = p.match(/^\/bigquery\/v2\/projects\/([^/]+)\/datasets\/([^/]+)\/tables\/([^/]+)\/data$/))
    ) {
      const table = this.lookup(m[1], m[2], m[3]);
      const job: Job = {
        id: '',
        projectId: m[1],
        fields: table.schema,
        rows: table.rows,
        query: '',
        pending: 0,
      };
      const r = this.results(job, url);
      return { kind: 'bigquery#tableDataList', totalRows: r.totalRows, rows: r.rows, pageToken: r.pageToken };
    }
    throw new HttpError(404, 'notFound', `Not found: URL ${method} ${p}`);
  }
}
