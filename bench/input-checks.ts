/**
 * What the per-clip input checks cost on the request path, against the prediction they guard:
 * a 3 s 16 kHz 16-bit WAV (the serving benchmark's clip), the default featurize params and MLP.
 * In-process timings (the checks are not a command of their own), median of 40 runs each,
 * measured alternately in the same loop so machine load hits both alike.
 *
 * - decode_ms: `decodeRequestWav` alone (the server decodes every clip anyway).
 * - checks_ms: `inspectClip` (decode + measure + anomalies against a model's schema.json).
 * - predict_ms: `predictAudio` on the decoded clip (features + network).
 * - checks_vs_predict: (checks_ms - decode_ms) / predict_ms, the share the checks add.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeWav } from '../lib/audio/wav.ts';
import { loadModelDir } from '../lib/ml/model.ts';
import { paramsSchema } from '../lib/params-schema.ts';
import { decodeRequestWav } from '../lib/serving/decode.ts';
import { inspectClip } from '../lib/validation/clip.ts';
import { defaultInputChecks, readDataSchema } from '../lib/validation/schema.ts';
import { makeAudioModel } from '../test/support/audio-model.ts';
import { voiceLike } from '../test/support/bad-audio.ts';
import { makeTinyCorpus } from '../test/support/corpus.ts';

const RUNS = 40;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export default async function run(): Promise<Record<string, number | string>> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-checks-'));
  try {
    const corpus = await makeTinyCorpus(path.join(tmp, 'corpus'), { speakers: 2 });
    const featurize = paramsSchema.parse({}).featurize;
    await makeAudioModel(path.join(tmp, 'model'), corpus, { epochs: 2, featurize });
    const model = await loadModelDir(path.join(tmp, 'model'));
    const data = await readDataSchema(path.resolve('stages/validate/schema.yaml'), 'schema.yaml');
    const checks = { ...defaultInputChecks(), data, source: 'bench' };
    const bytes = encodeWav([voiceLike(16000, 3)], 16000, '16');
    const decode: number[] = [];
    const check: number[] = [];
    const predict: number[] = [];
    for (let i = 0; i < RUNS + 5; i++) {
      let t = performance.now();
      const audio = decodeRequestWav(bytes, 'clip');
      const d = performance.now() - t;
      t = performance.now();
      const clip = inspectClip(bytes, 'clip', checks, decodeRequestWav);
      const c = performance.now() - t;
      if (clip.anomalies.length) throw new Error(`bench clip has anomalies: ${clip.anomalies[0].kind}`);
      t = performance.now();
      model.predictAudio(audio);
      const p = performance.now() - t;
      if (i < 5) continue; // warm-up
      decode.push(d);
      check.push(c);
      predict.push(p);
    }
    const [decodeMs, checksMs, predictMs] = [median(decode), median(check), median(predict)];
    const round = (x: number): number => Number(x.toFixed(3));
    return {
      decode_ms: round(decodeMs),
      checks_ms: round(checksMs),
      predict_ms: round(predictMs),
      checks_vs_predict: round(Math.max(0, checksMs - decodeMs) / predictMs),
      runs: RUNS,
      loadavg: os.loadavg()[0].toFixed(2),
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
