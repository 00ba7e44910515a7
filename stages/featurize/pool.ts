/**
 * Runs `featurizeAudio` over many WAV files on worker threads (`lib/ml/features-worker.mjs`).
 * Each file is computed independently by the same code, and results are stored by file index,
 * so the output is identical whatever the worker count or completion order.
 */
import fs from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { decodeWav } from '../../lib/audio/wav.ts';
import type { ClipFeatures, FeaturizeConfig } from '../../lib/ml/features.ts';
import { featurizeAudio, FrameExtractor } from '../../lib/ml/features.ts';

export interface FileFeatures extends ClipFeatures {
  /** Seconds of audio decoded (before truncation). */
  seconds: number;
}

/** The outcome per file: features, or the reason it could not be read. */
export type FileResult = FileFeatures | { error: string };

export interface FeaturizeFilesOptions {
  /**
   * Compute threads; 0 or 1 computes in this thread only. Default: available cores (at most
   * one per file). With n > 1, n - 1 workers start and this thread featurizes files too while
   * they boot, so small jobs never wait for worker start-up.
   */
  workers?: number;
  /** Let this thread take files too (default true); false sends every file to the workers. */
  useMainThread?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

const workerUrl = new URL('../../lib/ml/features-worker.mjs', import.meta.url);

/** Default thread count: the cores this process may use. */
export function defaultWorkers(): number {
  return Math.max(1, os.availableParallelism());
}

function featurizeFile(config: FeaturizeConfig, file: string, extractor: FrameExtractor): FileResult {
  try {
    const audio = decodeWav(fs.readFileSync(file), file);
    return { ...featurizeAudio(config, audio, extractor), seconds: audio.length / audio.sampleRate };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

const yieldToEvents = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Featurizes `files` (absolute paths); result `i` belongs to `files[i]`, whichever thread ran it. */
export async function featurizeFiles(
  config: FeaturizeConfig,
  files: string[],
  options: FeaturizeFilesOptions = {},
): Promise<FileResult[]> {
  const total = files.length;
  const results: FileResult[] = new Array(total);
  const useMain = options.useMainThread ?? true;
  const threads = Math.min(options.workers ?? defaultWorkers(), total);
  const extractor = new FrameExtractor(config);
  let done = 0;
  const finished = (): void => {
    done++;
    options.onProgress?.(done, total);
  };
  if (threads <= 1) {
    for (let i = 0; i < total; i++) {
      options.signal?.throwIfAborted();
      results[i] = featurizeFile(config, files[i], extractor);
      finished();
    }
    return results;
  }

  const workers = Array.from({ length: useMain ? threads - 1 : threads }, () => new Worker(workerUrl));
  let next = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (err: unknown): void => {
        failed = true;
        reject(err);
      };
      const abort = (): void => fail(options.signal?.reason ?? new Error('aborted'));
      options.signal?.addEventListener('abort', abort, { once: true });
      const settle = (): void => {
        if (done === total) {
          options.signal?.removeEventListener('abort', abort);
          resolve();
        }
      };
      const feed = (w: Worker): void => {
        if (next >= total || failed) return;
        const id = next++;
        w.postMessage({ id, file: files[id], config });
      };
      for (const w of workers) {
        w.on('message', (m: { id: number; ready?: boolean; error?: string } & Partial<FileFeatures>) => {
          // A worker asks for its first file once its modules are loaded.
          if (m.ready) return feed(w);
          results[m.id] =
            m.error !== undefined
              ? { error: m.error }
              : { summary: m.summary!, frames: m.frames!, nFrames: m.nFrames!, seconds: m.seconds! };
          finished();
          feed(w);
          settle();
        });
        w.on('error', fail);
        w.on('exit', (code) => {
          if (done < total) fail(new Error(`featurize worker exited early with code ${code}`));
        });
      }
      if (!useMain) return;
      // This thread takes files one at a time, yielding between them so worker replies are handled.
      void (async () => {
        while (next < total && !failed) {
          const id = next++;
          results[id] = featurizeFile(config, files[id], extractor);
          finished();
          settle();
          await yieldToEvents();
        }
      })();
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
