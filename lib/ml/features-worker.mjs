// Worker thread for featurize: decodes one WAV file and runs the same `featurizeAudio` the main
// thread (and serving) runs. From the sources the feature code is TypeScript, so the worker
// registers tsx itself (a worker does not inherit the parent's loader); in the compiled CLI
// (lib/cli/build.mjs) it is compiled in and LOCKSTEP_COMPILED is true. Posts { ready: true } once
// loaded, then receives { id, file, config, checks? } jobs and replies { id, summary, frames,
// nFrames, seconds, check? } (buffers transferred) or { id, error, check? }; `check` holds the
// per-clip input checks' findings (lib/validation/clip.ts) when `checks` was sent.
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';

if (!globalThis.LOCKSTEP_COMPILED) (await import('tsx/esm/api')).register();
const { decodeWav } = await import('../audio/wav.ts');
const { featurizeAudio, FrameExtractor } = await import('./features.ts');
const { inspectDecoded } = await import('../validation/clip.ts');

/** One extractor per config (its tables are built once per thread). */
let cached = { key: '', extractor: null };

parentPort.on('message', ({ id, file, config, checks }) => {
  let check;
  try {
    const key = JSON.stringify(config);
    if (cached.key !== key) cached = { key, extractor: new FrameExtractor(config) };
    const audio = decodeWav(fs.readFileSync(file), file);
    if (checks) check = inspectDecoded(audio, checks);
    const clip = featurizeAudio(config, audio, cached.extractor);
    parentPort.postMessage(
      {
        id,
        summary: clip.summary,
        frames: clip.frames,
        nFrames: clip.nFrames,
        seconds: audio.length / audio.sampleRate,
        check,
      },
      [clip.summary.buffer, clip.frames.buffer],
    );
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message ? err.message : err), check });
  }
});
parentPort.postMessage({ ready: true });
