/**
 * Featurize split across machines: shard `i` of `N` computes the per-file features of every
 * N-th candidate file (interleaved, so each shard gets a share of every split) and writes them
 * to a shard directory; the merge reads all N shard directories, puts each file's result back in
 * manifest order and runs the same tail as a single-machine run (`writeFeatures`), so the merged
 * `out/features/` is byte-identical to an unsharded run on the same inputs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { StageError } from '../../lib/errors.ts';
import type { Shard, StageResult } from '../../lib/types.ts';
import type { FileResult } from './pool.ts';
import { computeFileResults, featurizeCandidates, writeFeatures, type FeaturizeRunOptions } from './index.ts';
import { checkValue } from '../../lib/yaml-source.ts';

const shardFileSchema = z
  .object({
    shard: z.number().int().min(0),
    count: z.number().int().min(1),
    computeSeconds: z.number(),
    files: z.array(
      z.union([
        z.object({ path: z.string(), seconds: z.number(), nFrames: z.number().int() }).strict(),
        z.object({ path: z.string(), error: z.string() }).strict(),
      ]),
    ),
  })
  .strict();

/** Candidate indices shard `index` of `count` computes. */
export function shardIndices(total: number, shard: Shard): number[] {
  const out: number[] = [];
  for (let i = shard.index; i < total; i += shard.count) out.push(i);
  return out;
}

function f32Bytes(rows: Float32Array[]): Buffer {
  return Buffer.concat(rows.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength)));
}

/** Computes one shard's per-file features into `dir` (shard.json, summary.f32, frames.f32). */
export async function runFeaturizeShard(opts: FeaturizeRunOptions, shard: Shard, dir: string): Promise<void> {
  const candidates = featurizeCandidates(opts.root, opts.out);
  const mine = shardIndices(candidates.length, shard).map((i) => candidates[i]!);
  opts.out.err(
    `featurize: shard ${shard.index + 1}/${shard.count}: ${mine.length} of ${candidates.length} files`,
  );
  const { results, computeSeconds } = await computeFileResults(opts, mine);
  const ok = results.filter((r): r is Exclude<FileResult, { error: string }> => !('error' in r));
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'summary.f32'), f32Bytes(ok.map((r) => r.summary)));
  fs.writeFileSync(path.join(dir, 'frames.f32'), f32Bytes(ok.map((r) => r.frames)));
  const files = mine.map((f, i) => {
    const r = results[i]!;
    return 'error' in r
      ? { path: f.path, error: r.error }
      : { path: f.path, seconds: r.seconds, nFrames: r.nFrames };
  });
  // computeSeconds is a timing, but shard directories are scratch (never an out or locked).
  fs.writeFileSync(
    path.join(dir, 'shard.json'),
    JSON.stringify({ shard: shard.index, count: shard.count, computeSeconds, files }) + '\n',
  );
}

/** Merges shard directories (any order) into `out/features/`, exactly as one machine writes it. */
export async function mergeFeaturizeShards(opts: FeaturizeRunOptions, dirs: string[]): Promise<StageResult> {
  const candidates = featurizeCandidates(opts.root, opts.out);
  const byPath = new Map<string, FileResult>();
  let computeSeconds = 0;
  let D = -1;
  let TF = -1;
  for (const dir of dirs) {
    const where = path.join(dir, 'shard.json');
    const text = fs.readFileSync(where, 'utf8');
    const parsed = checkValue(shardFileSchema, JSON.parse(text), where, {
      text,
      suffix: ', or re-run the shard',
    });
    if (!parsed.ok) throw new StageError('featurize', parsed.lines.join('\n'));
    const shard = parsed.data;
    computeSeconds += shard.computeSeconds;
    const ok = shard.files.filter((f) => !('error' in f));
    const summaries = new Float32Array(new Uint8Array(fs.readFileSync(path.join(dir, 'summary.f32'))).buffer);
    const frames = new Float32Array(new Uint8Array(fs.readFileSync(path.join(dir, 'frames.f32'))).buffer);
    if (ok.length > 0) {
      D = summaries.length / ok.length;
      TF = frames.length / ok.length;
    }
    let row = 0;
    for (const f of shard.files) {
      if ('error' in f) {
        byPath.set(f.path, { error: f.error });
        continue;
      }
      byPath.set(f.path, {
        seconds: f.seconds,
        nFrames: f.nFrames,
        summary: summaries.slice(row * D, (row + 1) * D),
        frames: frames.slice(row * TF, (row + 1) * TF),
      });
      row++;
    }
  }
  const results = candidates.map((c) => {
    const r = byPath.get(c.path);
    if (!r) {
      throw new StageError(
        'featurize',
        `shards: no shard computed "${c.path}". Run every shard i/N of the same inputs before the merge.`,
      );
    }
    return r;
  });
  return writeFeatures(opts, candidates, results, computeSeconds);
}
