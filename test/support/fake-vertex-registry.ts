/**
 * The Model Registry half of the fake Vertex AI (test/support/fake-vertex.ts): listing versions
 * with paging, merging version aliases, importing and listing model evaluations and their slices.
 * Requests are checked against the shipped protos (`validate`), and beyond them against the rules
 * the real service enforces:
 * - aliases match `[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]` and are unique within a model (adding one
 *   to a version takes it from the version that had it); `default` cannot be removed, only moved,
 *   so exactly one version carries it; mergeVersionAliases needs an explicit version id;
 * - labels: keys and values of at most 63 characters of `[a-z0-9_-]`, keys starting with a letter;
 * - evaluations with the classification schema: the metrics fields of
 *   classification_metrics_1.0.0.yaml only, and a confusion matrix whose `rows` are objects
 *   holding a `row` array, one per annotation spec. The array-of-arrays form (the one AutoML
 *   evaluations report) is answered `400 Invalid Metrics Format`, as the real import does
 *   (googleapis/python-aiplatform#5570).
 */
import {
  ApiError,
  validate,
  type FakeRequest,
  type FakeVertex,
  type FakeModelVersion,
} from './fake-vertex.ts';

export const CLASSIFICATION_SCHEMA =
  'gs://google-cloud-aiplatform/schema/modelevaluation/classification_metrics_1.0.0.yaml';

export interface FakeEvaluationSlice {
  name: string;
  slice: { dimension: string; value: string };
  metricsSchemaUri?: string;
  metrics: unknown;
}

export interface FakeEvaluation {
  name: string;
  displayName?: string;
  metricsSchemaUri?: string;
  metrics: unknown;
  createTime: string;
  slices: FakeEvaluationSlice[];
}

const ALIAS = /^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]$/;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;

const bad = (message: string) => new ApiError(400, 'INVALID_ARGUMENT', message);

/** Throws 400 for an alias the service rejects. */
export function checkAlias(alias: string, where: string): void {
  if (!ALIAS.test(alias))
    throw bad(`${where}: version alias "${alias}" must match [a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]`);
}

/** Throws 400 for labels the service rejects. */
export function checkLabels(labels: Record<string, string>, where: string): void {
  if (Object.keys(labels).length > 64) throw bad(`${where}: at most 64 labels`);
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_KEY.test(k)) throw bad(`${where}: invalid label key "${k}"`);
    if (typeof v !== 'string' || !LABEL_VALUE.test(v)) throw bad(`${where}: invalid label value "${k}=${v}"`);
  }
}

const CONFIDENCE_FIELDS = new Set([
  'confidenceThreshold',
  'maxPredictions',
  'recall',
  'precision',
  'falsePositiveRate',
  'f1Score',
  'f1ScoreMicro',
  'f1ScoreMacro',
  'recallAt1',
  'precisionAt1',
  'falsePositiveRateAt1',
  'f1ScoreAt1',
  'truePositiveCount',
  'falsePositiveCount',
  'falseNegativeCount',
  'trueNegativeCount',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkConfusionMatrix(cm: unknown, at: string): string | undefined {
  if (!isObject(cm)) return `${at}: expected an object`;
  for (const k of Object.keys(cm))
    if (k !== 'annotationSpecs' && k !== 'rows') return `${at}.${k}: unknown field`;
  const specs = cm.annotationSpecs;
  if (!Array.isArray(specs)) return `${at}.annotationSpecs: expected a list`;
  for (const [i, s] of specs.entries()) {
    if (!isObject(s) || Object.keys(s).some((k) => k !== 'id' && k !== 'displayName'))
      return `${at}.annotationSpecs[${i}]: expected {id, displayName}`;
    if (typeof (s.displayName ?? '') !== 'string' || typeof (s.id ?? '') !== 'string')
      return `${at}.annotationSpecs[${i}]: id and displayName are strings`;
  }
  const rows = cm.rows;
  if (!Array.isArray(rows)) return `${at}.rows: expected a list`;
  if (rows.length !== specs.length)
    return `${at}.rows: ${rows.length} rows for ${specs.length} annotation specs`;
  for (const [i, r] of rows.entries()) {
    // The schema's row is an object holding the counts; a bare array is what the API rejects.
    if (!isObject(r) || !Array.isArray(r.row) || Object.keys(r).length !== 1)
      return `${at}.rows[${i}]: expected {row: [counts]}`;
    if (r.row.length !== specs.length || r.row.some((c) => typeof c !== 'number' || c < 0))
      return `${at}.rows[${i}].row: expected ${specs.length} counts`;
  }
  return undefined;
}

/** The first problem of classification metrics against classification_metrics_1.0.0.yaml. */
export function checkClassificationMetrics(m: unknown): string | undefined {
  if (!isObject(m)) return 'metrics: expected an object';
  for (const [k, v] of Object.entries(m)) {
    if (k === 'auPrc' || k === 'auRoc' || k === 'logLoss') {
      if (typeof v !== 'number') return `metrics.${k}: expected a number`;
    } else if (k === 'confusionMatrix') {
      const p = checkConfusionMatrix(v, 'metrics.confusionMatrix');
      if (p) return p;
    } else if (k === 'confidenceMetrics') {
      if (!Array.isArray(v)) return 'metrics.confidenceMetrics: expected a list';
      for (const [i, c] of v.entries()) {
        if (!isObject(c)) return `metrics.confidenceMetrics[${i}]: expected an object`;
        for (const [f, x] of Object.entries(c)) {
          if (f === 'confusionMatrix') {
            const p = checkConfusionMatrix(x, `metrics.confidenceMetrics[${i}].confusionMatrix`);
            if (p) return p;
          } else if (!CONFIDENCE_FIELDS.has(f)) return `metrics.confidenceMetrics[${i}].${f}: unknown field`;
          else if (typeof x !== 'number') return `metrics.confidenceMetrics[${i}].${f}: expected a number`;
        }
      }
    } else return `metrics.${k}: unknown field`;
  }
  return undefined;
}

/** One page of `items` for a list request (page tokens are offsets). */
function page<T>(fake: FakeVertex, items: T[], url: URL): { items: T[]; nextPageToken?: string } {
  const asked = Number(url.searchParams.get('pageSize') ?? 0) || 100;
  const size = Math.min(asked, fake.options.maxPageSize ?? 100);
  const token = url.searchParams.get('pageToken') ?? '';
  if (token && !/^\d+$/.test(token)) throw bad(`invalid page_token "${token}"`);
  const start = Number(token || 0);
  const next = start + size;
  return { items: items.slice(start, next), ...(next < items.length ? { nextPageToken: String(next) } : {}) };
}

function versionsOf(fake: FakeVertex, model: string): FakeModelVersion[] {
  const versions = fake.models.get(model);
  if (!versions?.length) throw new ApiError(404, 'NOT_FOUND', `Model ${model} not found.`);
  return versions;
}

/** The version an evaluation parent names (`<model>@<id or alias>`, or the default version). */
function versionKey(fake: FakeVertex, parent: string): string {
  const v = fake.findModel(parent);
  return `${v.name}@${v.versionId}`;
}

const MODEL = String.raw`projects/[^/]+/locations/[^/]+/models/[^/:]+`;

/** The Model Registry routes; registered on every FakeVertex. */
export function modelRegistryRoutes(req: FakeRequest): unknown {
  const { method, path: p, url, body, fake } = req;
  let m: RegExpMatchArray | null;
  if (method === 'GET' && (m = p.match(new RegExp(`^/v1/(${MODEL}):listVersions$`)))) {
    fake.fault('listModelVersions');
    const pageSize = url.searchParams.get('pageSize');
    validate('ListModelVersionsRequest', {
      name: m[1],
      ...(pageSize ? { pageSize: Number(pageSize) } : {}),
      ...(url.searchParams.get('pageToken') ? { pageToken: url.searchParams.get('pageToken') } : {}),
    });
    if (m[1].includes('@')) throw bad(`ListModelVersions: name must not name a version "${m[1]}"`);
    const { items, nextPageToken } = page(fake, versionsOf(fake, m[1]), url);
    return { models: items, ...(nextPageToken ? { nextPageToken } : {}) };
  }
  if (method === 'POST' && (m = p.match(new RegExp(`^/v1/(${MODEL}):mergeVersionAliases$`)))) {
    fake.fault('mergeVersionAliases');
    validate('MergeVersionAliasesRequest', { ...body, name: m[1] });
    const [base, ver] = m[1].split('@');
    if (!ver || !/^\d+$/.test(ver))
      throw bad(`MergeVersionAliases: name must include an explicit version id "${m[1]}"`);
    const versions = versionsOf(fake, base!);
    const target = versions.find((v) => v.versionId === ver);
    if (!target) throw new ApiError(404, 'NOT_FOUND', `Model ${m[1]} not found.`);
    const asked = (body.versionAliases ?? []) as string[];
    if (asked.length === 0) throw bad('version_aliases is required');
    const add = new Set<string>();
    const remove = new Set<string>();
    for (const a of asked) {
      const name = a.startsWith('-') ? a.slice(1) : a;
      checkAlias(name, 'version_aliases');
      (a.startsWith('-') ? remove : add).add(name);
    }
    // Adding and removing the same alias cancel out.
    for (const a of [...add]) if (remove.delete(a)) add.delete(a);
    if (remove.has('default'))
      throw bad('version_aliases: the default alias cannot be removed; add it to another version to move it');
    for (const a of add)
      for (const v of versions) if (v !== target) v.versionAliases = v.versionAliases.filter((x) => x !== a);
    target.versionAliases = [
      ...target.versionAliases.filter((a) => !remove.has(a)),
      ...[...add].filter((a) => !target.versionAliases.includes(a)),
    ];
    return { ...target };
  }
  if (method === 'POST' && (m = p.match(new RegExp(`^/v1/(${MODEL})/evaluations:import$`)))) {
    fake.fault('importModelEvaluation');
    validate('ImportModelEvaluationRequest', { ...body, parent: m[1] });
    const key = versionKey(fake, m[1]);
    const ev = (body.modelEvaluation ?? {}) as Record<string, unknown>;
    if (ev.metricsSchemaUri === CLASSIFICATION_SCHEMA) {
      const problem = checkClassificationMetrics(ev.metrics);
      if (problem) throw bad(`Invalid Metrics Format: ${problem}`);
    }
    const list = fake.evaluations.get(key) ?? [];
    const created: FakeEvaluation = {
      name: `${key.split('@')[0]}/evaluations/${fake.newId()}`,
      ...(ev.displayName ? { displayName: ev.displayName as string } : {}),
      ...(ev.metricsSchemaUri ? { metricsSchemaUri: ev.metricsSchemaUri as string } : {}),
      metrics: ev.metrics,
      createTime: new Date().toISOString(),
      slices: [],
    };
    list.push(created);
    fake.evaluations.set(key, list);
    const { slices: _slices, ...out } = created;
    return out;
  }
  if (method === 'GET' && (m = p.match(new RegExp(`^/v1/(${MODEL})/evaluations$`)))) {
    fake.fault('listModelEvaluations');
    validate('ListModelEvaluationsRequest', { parent: m[1] });
    const { items, nextPageToken } = page(fake, fake.evaluations.get(versionKey(fake, m[1])) ?? [], url);
    return {
      modelEvaluations: items.map(({ slices: _s, ...e }) => e),
      ...(nextPageToken ? { nextPageToken } : {}),
    };
  }
  const EVAL = `(${MODEL})/evaluations/([^/:]+)`;
  const evaluation = (model: string, id: string) => {
    const base = model.split('@')[0];
    for (const [key, list] of fake.evaluations)
      if (key.startsWith(`${base}@`)) {
        const found = list.find((e) => e.name === `${base}/evaluations/${id}`);
        if (found) return found;
      }
    throw new ApiError(404, 'NOT_FOUND', `ModelEvaluation ${model}/evaluations/${id} not found.`);
  };
  if (method === 'POST' && (m = p.match(new RegExp(`^/v1/${EVAL}/slices:batchImport$`)))) {
    fake.fault('batchImportModelEvaluationSlices');
    validate('BatchImportModelEvaluationSlicesRequest', { ...body, parent: `${m[1]}/evaluations/${m[2]}` });
    const ev = evaluation(m[1]!, m[2]!);
    const slices = (body.modelEvaluationSlices ?? []) as Record<string, unknown>[];
    const names: string[] = [];
    for (const [i, s] of slices.entries()) {
      const slice = s.slice as { dimension?: string; value?: string } | undefined;
      if (!slice?.dimension || !slice.value)
        throw bad(`model_evaluation_slices[${i}].slice: dimension and value are required`);
      if (s.metricsSchemaUri === CLASSIFICATION_SCHEMA) {
        const problem = checkClassificationMetrics(s.metrics);
        if (problem) throw bad(`Invalid Metrics Format: model_evaluation_slices[${i}].${problem}`);
      }
      const name = `${ev.name}/slices/${fake.newId()}`;
      ev.slices.push({
        name,
        slice: { dimension: slice.dimension, value: slice.value },
        ...(s.metricsSchemaUri ? { metricsSchemaUri: s.metricsSchemaUri as string } : {}),
        metrics: s.metrics,
      });
      names.push(name);
    }
    return { importedModelEvaluationSlices: names };
  }
  if (method === 'GET' && (m = p.match(new RegExp(`^/v1/${EVAL}/slices$`)))) {
    validate('ListModelEvaluationSlicesRequest', { parent: `${m[1]}/evaluations/${m[2]}` });
    const { items, nextPageToken } = page(fake, evaluation(m[1]!, m[2]!).slices, url);
    return { modelEvaluationSlices: items, ...(nextPageToken ? { nextPageToken } : {}) };
  }
  return undefined;
}
