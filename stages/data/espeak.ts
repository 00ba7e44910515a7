/**
 * Runs eSpeak NG (WebAssembly) for many utterances in parallel worker threads. The 18 MB module
 * is compiled once and handed to each worker; each worker keeps one instance and restores its
 * initialized memory before every utterance, so results depend only on the arguments, never on
 * scheduling or on which worker ran them.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createSession } from './espeak-run.mjs';
import { renderUtterance, type RenderSpec } from './render.ts';

/** A compiled `WebAssembly.Module` (the project's TypeScript lib has no WebAssembly types). */
export type WasmModule = object;

const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WasmModule> } })
  .WebAssembly;

let compiled: Promise<WasmModule> | undefined;

/** The compiled espeak-ng.wasm, shared by every pool in this process. */
export function loadEspeakModule(): Promise<WasmModule> {
  compiled ??= (async () => {
    const js = fileURLToPath(import.meta.resolve('espeak-ng'));
    const bytes = await readFile(js.replace(/\.js$/, '.wasm'));
    return wasm.compile(bytes);
  })();
  return compiled;
}

/** One utterance: eSpeak NG arguments, and optionally how to render the result into a corpus file. */
export interface SynthesisJob {
  args: string[];
  render?: RenderSpec;
}

export interface SynthesisOptions {
  /** Worker threads (default: available cores, at most 4; 0 runs in this thread). */
  threads?: number;
  /** Called after each finished utterance. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * Synthesizes each job (an argument list, or arguments plus a render spec) and returns the bytes
 * in the same order: eSpeak's WAV, or the rendered corpus file.
 * @throws Error naming the failing utterance when eSpeak produces no audio.
 */
export async function synthesizeAll(
  input: (string[] | SynthesisJob)[],
  options: SynthesisOptions = {},
): Promise<Uint8Array[]> {
  const jobs: SynthesisJob[] = input.map((j) => (Array.isArray(j) ? { args: j } : j));
  const module = await loadEspeakModule();
  const threads = Math.min(options.threads ?? Math.min(4, availableParallelism()), jobs.length);
  const results: Uint8Array[] = new Array(jobs.length);
  let done = 0;
  const finish = (i: number, wav: Uint8Array): void => {
    results[i] = wav;
    options.onProgress?.(++done, jobs.length);
  };
  if (threads <= 0) {
    const session = await createSession(module);
    for (let i = 0; i < jobs.length; i++) {
      options.signal?.throwIfAborted();
      const wav = session.synthesize(jobs[i].args);
      const render = jobs[i].render;
      finish(i, render ? renderUtterance(render, wav) : wav);
    }
    return results;
  }
  const workerUrl = new URL('./espeak-worker.mjs', import.meta.url);
  const workers = Array.from({ length: threads }, () => new Worker(workerUrl, { workerData: { module } }));
  let next = 0;
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const send = (): void => {
              if (options.signal?.aborted) return reject(options.signal.reason);
              if (next >= jobs.length) return resolve();
              const id = next++;
              worker.postMessage({ id, args: jobs[id].args, render: jobs[id].render });
            };
            worker.on('message', (msg: { id: number; wav?: Uint8Array; error?: string }) => {
              if (msg.error !== undefined || !msg.wav) {
                return reject(
                  new Error(`espeak-ng ${JSON.stringify(jobs[msg.id].args.at(-1))}: ${msg.error}`),
                );
              }
              finish(msg.id, msg.wav);
              send();
            });
            worker.on('error', reject);
            worker.on('exit', (code) => {
              if (code !== 0) reject(new Error(`espeak-ng worker exited with code ${code}`));
            });
            send();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
