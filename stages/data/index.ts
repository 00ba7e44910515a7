/**
 * The `data` stage (only when `data.source: demo`): synthesizes the embedded demo corpus into
 * `out/data/demo/` in the TESS layout. No download, no system package: eSpeak NG runs as
 * WebAssembly. Deterministic: the same `data.*` params give byte-identical files.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { StageContext, StageResult } from '../../lib/types.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { synthesizeCorpus } from './corpus.ts';

export { dataStage } from './stage.ts';

/** The data stage's body: synthesizes the corpus into a staging folder, then swaps it in. */
export async function runData(ctx: StageContext): Promise<StageResult> {
  const p = ctx.params.data as Params['data'];
  const dest = ctx.abs(PATHS.demo);
  // Write next to the destination, then swap it in: an interrupted run leaves no half corpus.
  const staging = `${dest}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const started = Date.now();
  let lastShown = 0;
  try {
    const files = await synthesizeCorpus(staging, {
      speakers: p.speakers,
      words: p.words,
      seed: p.seed,
      noise: p.noise,
      sampleRate: p.sample_rate,
      signal: ctx.signal,
      onProgress: (done, total) => {
        const now = Date.now();
        if (done === total || now - lastShown > 2000) {
          lastShown = now;
          ctx.out.err(`data: synthesized ${done}/${total} utterances`);
        }
      },
    });
    await rm(dest, { recursive: true, force: true });
    await mkdir(path.dirname(dest), { recursive: true });
    await rename(staging, dest);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    return {
      summary: `${files.length} utterances, ${p.speakers} speakers, ${p.words} words, ${p.sample_rate} Hz in ${seconds} s`,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
