/**
 * Slice metrics as rows (`slice`, `metric`, `value`), from what evaluate records: a `slices` list
 * or map in `metrics.json` or `slices.json`, or flat `slice.<slice>.<metric>` keys. Leaves may be
 * numbers or `{value, ...}` objects (a point estimate with its interval). Anything else is
 * ignored: a revision from before slices existed simply has none.
 */

export interface SliceRow {
  /** `speaker=OAF`, `gender=female`, ... */
  slice: string;
  metric: string;
  value: number;
  /** Clips in the slice, when recorded. */
  n?: number;
}

const LIST_NAME_KEYS = ['slice', 'name', 'key', 'id'];
const POINT_KEYS = ['value', 'point', 'estimate', 'mean'];
const SIZE_KEYS = new Set(['n', 'size', 'count', 'clips', 'support']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return Boolean(v) && typeof v === 'object' && !Array.isArray(v);
}

/** A number, or the point estimate of `{value, lo, hi}`-like objects. */
function pointOf(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (isRecord(v)) {
    for (const k of POINT_KEYS) if (typeof v[k] === 'number' && Number.isFinite(v[k])) return v[k] as number;
  }
  return undefined;
}

function sliceName(parts: string[]): string {
  return parts.length === 2 ? `${parts[0]}=${parts[1]}` : parts.join('/');
}

/** Metrics of one slice object: numeric leaves (or points), size keys kept aside. */
function metricsOf(obj: Record<string, unknown>): { metrics: [string, number][]; n?: number } {
  const metrics: [string, number][] = [];
  let n: number | undefined;
  const source = isRecord(obj.metrics) ? obj.metrics : obj;
  for (const [k, v] of Object.entries(source)) {
    const p = pointOf(v);
    if (p === undefined) continue;
    if (SIZE_KEYS.has(k)) n = p;
    else if (!LIST_NAME_KEYS.includes(k)) metrics.push([k, p]);
  }
  if (source !== obj) for (const k of SIZE_KEYS) if (typeof obj[k] === 'number') n = obj[k] as number;
  return { metrics, n };
}

function fromList(list: unknown[]): SliceRow[] {
  const rows: SliceRow[] = [];
  for (const item of list) {
    if (!isRecord(item)) continue;
    const nameKey = LIST_NAME_KEYS.find((k) => typeof item[k] === 'string');
    if (!nameKey) continue;
    const name = String(item[nameKey]);
    const kind = typeof item.kind === 'string' ? item.kind : undefined;
    const slice = kind && !name.includes('=') ? `${kind}=${name}` : name;
    const { metrics, n } = metricsOf(item);
    for (const [metric, value] of metrics)
      rows.push({ slice, metric, value, ...(n === undefined ? {} : { n }) });
  }
  return rows;
}

/** A map `{slice: {metric: v}}` or `{kind: {value: {metric: v}}}`. */
function fromMap(map: Record<string, unknown>, prefix: string[] = []): SliceRow[] {
  const rows: SliceRow[] = [];
  for (const [key, v] of Object.entries(map)) {
    if (!isRecord(v) || pointOf(v) !== undefined) continue;
    const leaves = Object.values(isRecord(v.metrics) ? v.metrics : v);
    if (leaves.some((x) => pointOf(x) !== undefined)) {
      const { metrics, n } = metricsOf(v);
      const slice = sliceName([...prefix, key]);
      for (const [metric, value] of metrics)
        rows.push({ slice, metric, value, ...(n === undefined ? {} : { n }) });
    } else if (prefix.length < 3) {
      rows.push(...fromMap(v, [...prefix, key]));
    }
  }
  return rows;
}

/** Slice rows from a metrics or slices document (see the module comment). */
export function parseSlices(doc: unknown): SliceRow[] {
  if (Array.isArray(doc)) return fromList(doc);
  if (!isRecord(doc)) return [];
  if ('slices' in doc) {
    const s = doc.slices;
    if (Array.isArray(s)) return fromList(s);
    if (isRecord(s)) return fromMap(s);
  }
  const flat: SliceRow[] = [];
  for (const [k, v] of Object.entries(doc)) {
    const m = /^slices?\.(.+)\.([^.]+)$/.exec(k);
    const p = pointOf(v);
    if (m && p !== undefined) flat.push({ slice: m[1]!.replace('.', '='), metric: m[2]!, value: p });
  }
  if (flat.length > 0 || 'metrics' in doc || Object.values(doc).every((v) => typeof v === 'number'))
    return flat;
  return fromMap(doc);
}

/** The headline metric a slice is judged by: macro F1 when recorded, else F1, else accuracy. */
export function sliceHeadlineMetric(rows: SliceRow[]): string | undefined {
  const have = new Set(rows.map((r) => r.metric));
  return ['f1_macro', 'f1', 'accuracy'].find((m) => have.has(m)) ?? rows[0]?.metric;
}

/** The slice with the lowest headline metric, or undefined without slices. */
export function worstSlice(rows: SliceRow[]): SliceRow | undefined {
  const metric = sliceHeadlineMetric(rows);
  let worst: SliceRow | undefined;
  for (const r of rows) if (r.metric === metric && (!worst || r.value < worst.value)) worst = r;
  return worst;
}
