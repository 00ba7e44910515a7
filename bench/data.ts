/**
 * Data benchmark: eSpeak NG synthesis of the demo corpus, one thread, same utterances, same run.
 *
 * - session_speedup_vs_fresh: seconds with a fresh WebAssembly instance per utterance (the
 *   straightforward use of the espeak-ng package) / seconds with one session whose initialized
 *   memory is restored before each utterance (what the data stage does). Outputs are checked
 *   byte-identical before timing counts.
 * - fresh_ms_per_utterance, session_ms_per_utterance: the two per-utterance costs.
 * - corpus_seconds_default: the whole default corpus (data.* defaults, worker threads).
 * - corpus_utterances_per_second: its throughput.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { synthesizeCorpus } from '../stages/data/corpus.ts';
import { createSession, synthesize } from '../stages/data/espeak-run.mjs';
import { loadEspeakModule } from '../stages/data/espeak.ts';
import { espeakArgs, planUtterances } from '../stages/data/prosody.ts';
import { EMOTIONS, paramsSchema } from '../lib/params-schema.ts';

const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export default async function (): Promise<Record<string, number | string>> {
  const module = await loadEspeakModule();
  const jobs = planUtterances({ speakers: 3, words: 2, emotions: EMOTIONS, seed: 1, noise: 0 }).map((u) =>
    espeakArgs(u),
  );
  // Warm both paths once (JIT, lazy compilation of the module).
  await synthesize(module, jobs[0]);
  const session = await createSession(module);
  session.synthesize(jobs[0]);

  let t = performance.now();
  const fresh: string[] = [];
  for (const job of jobs) fresh.push(digest(await synthesize(module, job)));
  const freshMs = performance.now() - t;

  t = performance.now();
  const reused: string[] = [];
  for (const job of jobs) reused.push(digest(session.synthesize(job)));
  const sessionMs = performance.now() - t;
  if (reused.join() !== fresh.join())
    throw new Error('bench data: session output differs from fresh instances');

  const d = paramsSchema.parse({}).data;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-data-'));
  try {
    t = performance.now();
    const files = await synthesizeCorpus(dir, {
      speakers: d.speakers,
      words: d.words,
      seed: d.seed,
      noise: d.noise,
      sampleRate: d.sample_rate,
    });
    const corpusSeconds = (performance.now() - t) / 1000;
    return {
      utterances_timed: jobs.length,
      fresh_ms_per_utterance: Number((freshMs / jobs.length).toFixed(1)),
      session_ms_per_utterance: Number((sessionMs / jobs.length).toFixed(1)),
      session_speedup_vs_fresh: Number((freshMs / sessionMs).toFixed(2)),
      corpus_utterances: files.length,
      corpus_seconds_default: Number(corpusSeconds.toFixed(1)),
      corpus_utterances_per_second: Number((files.length / corpusSeconds).toFixed(1)),
      cores: os.availableParallelism(),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
