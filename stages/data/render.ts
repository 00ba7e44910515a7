/**
 * Turns one raw eSpeak NG rendering into the bytes of a corpus file: emotion colouring,
 * resampling to the corpus rate, gain and noise augmentation, 16-bit PCM. Runs in the worker
 * threads (and in-thread when there are none); a pure function of its inputs.
 */
import { decodeWav, downmix, encodeWav } from '../../lib/audio/wav.ts';
import { augment, colourVoice, resample } from './augment.ts';
import type { Utterance } from './prosody.ts';

/** The rendering inputs of an utterance (what a worker needs besides the eSpeak arguments). */
export type RenderSpec = Pick<
  Utterance,
  'path' | 'dull' | 'drive' | 'tremolo' | 'tremoloHz' | 'gainDb' | 'noise' | 'noiseSeed'
> & { sampleRate: number };

/** Renders a raw eSpeak WAV into the final corpus file bytes. */
export function renderUtterance(spec: RenderSpec, raw: Uint8Array): Uint8Array {
  const audio = decodeWav(raw, spec.path);
  let x: Float32Array = Float32Array.from(downmix(audio.channels));
  x = colourVoice(x, audio.sampleRate, spec);
  x = resample(x, audio.sampleRate, spec.sampleRate);
  x = augment(x, spec.gainDb, spec.noise, spec.noiseSeed);
  const bytes = encodeWav([x], spec.sampleRate, '16');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The render spec of an utterance at a corpus sample rate. */
export function renderSpec(u: Utterance, sampleRate: number): RenderSpec {
  const { path, dull, drive, tremolo, tremoloHz, gainDb, noise, noiseSeed } = u;
  return { path, dull, drive, tremolo, tremoloHz, gainDb, noise, noiseSeed, sampleRate };
}
