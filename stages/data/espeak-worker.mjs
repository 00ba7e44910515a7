// Worker thread: synthesizes utterances with eSpeak NG (WebAssembly). Plain JS so it needs no
// loader. Receives the compiled WebAssembly.Module once, then { id, args } jobs; replies with
// { id, wav } (the WAV bytes eSpeak wrote) or { id, error }.
import { parentPort, workerData } from 'node:worker_threads';
import { createSession } from './espeak-run.mjs';

const session = createSession(workerData.module);

parentPort.on('message', async ({ id, args }) => {
  try {
    const wav = (await session).synthesize(args);
    parentPort.postMessage({ id, wav }, [wav.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message ? err.message : err) });
  }
});
