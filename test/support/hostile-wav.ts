/**
 * A seeded corpus of hostile WAV files for fuzz tests: every header field of a demo clip set to
 * edge values (with and without a consistent byte rate / block align, so the checks behind the
 * first one are reached too), plus random byte flips in the first 64 bytes. The same seed gives
 * the same corpus on every machine.
 */
import { encodeWav } from '../../lib/audio/wav.ts';
import { voiceLike } from './bad-audio.ts';

export interface HostileWav {
  name: string;
  bytes: Buffer;
}

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const U32_EDGES = [
  0, 1, 3999, 4000, 8000, 44100, 192000, 192001, 1_828_732_544, 0x7fffffff, 0x80000000, 0xffffffff,
];
const U16_EDGES = [0, 1, 2, 3, 7, 8, 9, 12, 16, 17, 24, 32, 64, 255, 0x7fff, 65534, 65535];

/** Field offsets in the canonical 44-byte header wavefile writes. */
const FIELDS: Array<{ name: string; offset: number; size: 2 | 4 }> = [
  { name: 'riffSize', offset: 4, size: 4 },
  { name: 'fmtSize', offset: 16, size: 4 },
  { name: 'audioFormat', offset: 20, size: 2 },
  { name: 'numChannels', offset: 22, size: 2 },
  { name: 'sampleRate', offset: 24, size: 4 },
  { name: 'byteRate', offset: 28, size: 4 },
  { name: 'blockAlign', offset: 32, size: 2 },
  { name: 'bitsPerSample', offset: 34, size: 2 },
  { name: 'dataSize', offset: 40, size: 4 },
];

/** The demo clip every case starts from: 0.5 s of a voice-like tone, 16-bit mono at 16 kHz. */
export function demoClip(): Buffer {
  return encodeWav([voiceLike(16000, 0.5)], 16000, '16');
}

/**
 * Builds the corpus: each field at each edge value (`fields × edges` cases), a sample rate at
 * each edge with the byte rate kept consistent, and `flips` clips with 1–4 random bytes of the
 * first 64 changed. Includes valid but unusual files (192 kHz, an odd 191999 Hz, 8 channels).
 */
export function hostileWavs(options: { seed?: number; flips?: number } = {}): HostileWav[] {
  const base = demoClip();
  const out: HostileWav[] = [];
  for (const f of FIELDS) {
    for (const v of f.size === 4 ? U32_EDGES : U16_EDGES) {
      const b = Buffer.from(base);
      if (f.size === 4) b.writeUInt32LE(v, f.offset);
      else b.writeUInt16LE(v, f.offset);
      out.push({ name: `${f.name}=${v}`, bytes: b });
    }
  }
  for (const rate of U32_EDGES) {
    const b = Buffer.from(base);
    b.writeUInt32LE(rate, 24);
    b.writeUInt32LE((rate * 2) % 2 ** 32, 28);
    out.push({ name: `sampleRate=${rate} (consistent byteRate)`, bytes: b });
  }
  // Valid files at the edges of the accepted range, with real samples (1 s each).
  out.push({ name: 'valid 192000 Hz', bytes: encodeWav([voiceLike(192000, 1)], 192000, '16') });
  out.push({ name: 'valid 191999 Hz', bytes: encodeWav([voiceLike(191999, 1)], 191999, '16') });
  out.push({ name: 'valid 4000 Hz', bytes: encodeWav([voiceLike(4000, 1)], 4000, '16') });
  out.push({
    name: 'valid 8 channels',
    bytes: encodeWav(
      Array.from({ length: 8 }, () => voiceLike(16000, 0.2)),
      16000,
      '16',
    ),
  });
  const rand = prng(options.seed ?? 24);
  for (let i = 0; i < (options.flips ?? 120); i++) {
    const b = Buffer.from(base);
    const n = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < n; k++) {
      const at = Math.floor(rand() * 64);
      b[at] = b[at]! ^ (1 + Math.floor(rand() * 255));
    }
    out.push({ name: `flip #${i}`, bytes: b });
  }
  return out;
}
