/**
 * Reads what featurize wrote (`out/features/`): `index.json` plus, per split,
 * `<split>.summary.f32` (N×D raw summaries) and `<split>.frames.f32` (N×T×F raw frames), all
 * float32 little-endian.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { parseValue } from '../yaml-source.ts';

export const FEATURES_INDEX_VERSION = 1;

const LITTLE_ENDIAN = os.endianness() === 'LE';

const splitSchema = z.object({
  n: z.number().int().min(0),
  paths: z.array(z.string()),
  speakers: z.array(z.string()),
  labels: z.array(z.number().int().min(0)),
});

export const featuresIndexSchema = z.object({
  version: z.literal(FEATURES_INDEX_VERSION),
  featureNames: z.array(z.string()),
  summaryDim: z.number().int().positive(),
  frameDim: z.number().int().positive(),
  frames: z.number().int().positive(),
  labels: z.array(z.string()),
  splits: z.record(z.string(), splitSchema),
  frameFeatureNames: z.array(z.string()).optional(),
});

/** `out/features/index.json` */
export type FeaturesIndex = z.infer<typeof featuresIndexSchema>;

/** One split loaded in memory. */
export interface SplitData {
  n: number;
  /** D */
  d: number;
  /** n×d raw (unnormalised) summaries. */
  x: Float32Array;
  /** n×t×f raw frames (zero rows are padding). */
  frames: Float32Array;
  /** T */
  t: number;
  /** F */
  f: number;
  /** Class index per clip (index into `index.labels`). */
  y: Int32Array;
  paths: string[];
  speakers: string[];
}

/** File names of a split's matrices. */
export function splitFiles(split: string): { summary: string; frames: string } {
  return { summary: `${split}.summary.f32`, frames: `${split}.frames.f32` };
}

/** Reads and validates `<dir>/index.json`. @throws ConfigError when missing or malformed. */
export function readFeaturesIndex(dir: string): FeaturesIndex {
  const file = path.join(dir, 'index.json');
  let text: string;
  let json: unknown;
  try {
    text = fs.readFileSync(file, 'utf8');
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `${file}: cannot read features index (${(err as Error).message.split('\n')[0]}). Run the featurize stage first.`,
      { cause: err },
    );
  }
  return parseValue(featuresIndexSchema, json, file, { text, suffix: ', or re-run the featurize stage' });
}

/** Reads a little-endian float32 file, checking it holds exactly `count` values. */
function readF32(file: string, count: number): Float32Array {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      `${file}: cannot read feature matrix (${(err as NodeJS.ErrnoException).code ?? 'error'}). Re-run the featurize stage.`,
      { cause: err },
    );
  }
  if (buf.length !== count * 4) {
    throw new ConfigError(
      `${file}: expected ${count * 4} bytes, found "${buf.length}". Re-run the featurize stage.`,
    );
  }
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN) {
    // Copy into a fresh (4-byte aligned) array; the file bytes are already in host order.
    new Uint8Array(out.buffer).set(buf);
    return out;
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Writes float32 values little-endian (temp file + rename). */
export function writeF32(file: string, data: Float32Array): void {
  let buf: Buffer;
  if (LITTLE_ENDIAN) {
    buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  } else {
    buf = Buffer.alloc(data.length * 4);
    for (let i = 0; i < data.length; i++) buf.writeFloatLE(data[i], i * 4);
  }
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, buf);
  fs.renameSync(tmp, file);
}

/**
 * Loads one split of a features directory.
 * @throws ConfigError when the split is unknown or a file is missing or the wrong size.
 */
export function loadSplit(dir: string, split: string): SplitData {
  const index = readFeaturesIndex(dir);
  const s = index.splits[split];
  if (!s) {
    throw new ConfigError(
      `${path.join(dir, 'index.json')}: no split "${split}". Use one of ${Object.keys(index.splits).join(', ')}.`,
    );
  }
  const d = index.summaryDim;
  const t = index.frames;
  const f = index.frameDim;
  const files = splitFiles(split);
  return {
    n: s.n,
    d,
    x: readF32(path.join(dir, files.summary), s.n * d),
    frames: readF32(path.join(dir, files.frames), s.n * t * f),
    t,
    f,
    y: Int32Array.from(s.labels),
    paths: s.paths,
    speakers: s.speakers,
  };
}
