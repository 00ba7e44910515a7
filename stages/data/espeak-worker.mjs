// Worker thread: synthesizes utterances with eSpeak NG (WebAssembly) and, when asked, renders
// them into corpus files. Receives the compiled WebAssembly.Module once, then { id, args, render? }
// jobs; replies with { id, wav } (eSpeak's WAV, or the rendered file when `render` is given) or
// { id, error }. The rendering code is TypeScript, so from the sources the worker registers tsx
// itself (a worker does not inherit the parent's loader), only when a job needs it; the compiled
// CLI (lib/cli/build.mjs) compiles it in and sets LOCKSTEP_COMPILED.
import { parentPort, workerData } from 'node:worker_threads';
import { createSession } from './espeak-run.mjs';

const session = createSession(workerData.module);
let renderer;

async function loadRenderer() {
  if (!renderer) {
    if (!globalThis.LOCKSTEP_COMPILED) (await import('tsx/esm/api')).register();
    renderer = (await import('./render.ts')).renderUtterance;
  }
  return renderer;
}

parentPort.on('message', async ({ id, args, render }) => {
  try {
    let wav = (await session).synthesize(args);
    if (render) wav = (await loadRenderer())(render, wav);
    // A fresh copy owns its whole buffer, so it can be transferred.
    const out = wav.byteOffset === 0 && wav.byteLength === wav.buffer.byteLength ? wav : wav.slice();
    parentPort.postMessage({ id, wav: out }, [out.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message ? err.message : err) });
  }
});
