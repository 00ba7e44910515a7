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
  /** Worker threads; 0 or 1 computes in this thread. Default: available cores (at most files). */
  workers?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

const workerUrl = new URL('../../lib/ml/features-worker.mjs', import.meta.url);

/** Default worker count: the cores this process may use. */
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

/** Featurizes `files` (absolute paths); result `i` belongs to `files[i]`. */
export async function featurizeFiles(
  config: FeaturizeConfig,
  files: string[],
  options: FeaturizeFilesOptions = {},
): Promise<FileResult[]> {
  const total = files.length;
  const results: FileResult[] = new Array(total);
  const threads = Math.min(options.workers ?? defaultWorkers(), total);
  if (threads <= 1) {
    const extractor = new FrameExtractor(config);
    for (let i = 0; i < total; i++) {
      options.signal?.throwIfAborted();
      results[i] = featurizeFile(config, files[i], extractor);
      options.onProgress?.(i + 1, total);
    }
    return results;
  }

  const workers = Array.from({ length: threads }, () => new Worker(workerUrl));
  try {
    await new Promise<void>((resolve, reject) => {
      let next = 0;
      let done = 0;
      const abort = (): void => reject(options.signal?.reason ?? new Error('aborted'));
      options.signal?.addEventListener('abort', abort, { once: true });
      const feed = (w: Worker): void => {
        if (next >= total) return;
        const id = next++;
        w.postMessage({ id, file: files[id], config });
      };
      for (const w of workers) {
        w.on('message', (m: { id: number; error?: string } & Partial<FileFeatures>) => {
          results[m.id] =
            m.error !== undefined
              ? { error: m.error }
              : { summary: m.summary!, frames: m.frames!, nFrames: m.nFrames!, seconds: m.seconds! };
          done++;
          options.onProgress?.(done, total);
          if (done === total) {
            options.signal?.removeEventListener('abort', abort);
            resolve();
          } else feed(w);
        });
        w.on('error', reject);
        w.on('exit', (code) => {
          if (done < total) reject(new Error(`featurize worker exited early with code ${code}`));
        });
        feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
