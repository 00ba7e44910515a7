/**
 * Where each stage of the speech-emotion pipeline reads and writes, repository-relative.
 * Everything under `out/` is git-ignored: the lockfile pins it and the cache holds the bytes.
 */
export const PATHS = {
  /** data: synthesized demo corpus (`<emotion>/...wav`, TESS-style names). */
  demo: 'out/data/demo',
  /** ingest: manifest with labels, speakers, durations and the speaker-independent split. */
  ingest: 'out/ingest',
  manifest: 'out/ingest/manifest.json',
  /** validate: report.json, report.md, stats.json */
  validate: 'out/validate',
  /** validate: the schema and limits a clip is checked against; train copies it into the model. */
  inputSchema: 'out/validate/schema.json',
  /** featurize: per-split feature matrices, the transform artifact, training statistics. */
  features: 'out/features',
  /** train: the model directory (model.json, weights.bin, transform.json, labels.json, card.json, schema.json). */
  model: 'out/model',
  /** train: history.json (learning curves), metrics.json (backend, epochs, timing). */
  train: 'out/train',
  /** evaluate: metrics.json, confusion.json, plots/*.{vl.json,svg,png} */
  eval: 'out/eval',
  /** gate: verdict.json */
  gate: 'out/gate',
} as const;
