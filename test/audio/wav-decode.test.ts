import { describe, expect, it } from 'vitest';
import wavefilePkg from 'wavefile';
import { decodeWav, encodeWav } from '../../lib/audio/wav.ts';

const { WaveFile } = wavefilePkg as unknown as { WaveFile: typeof import('wavefile').WaveFile };

/** The decoder before samples were read straight from the data chunk: wavefile's unpacking. */
function wavefileReference(bytes: Uint8Array): Float32Array[] {
  const wav = new WaveFile();
  wav.fromBuffer(bytes);
  const bits = (wav.fmt as { bitsPerSample: number }).bitsPerSample;
  const channels = (wav.fmt as { numChannels: number }).numChannels;
  let raw = wav.getSamples(false, Float64Array) as unknown as Float64Array[];
  if (channels === 1) raw = [raw as unknown as Float64Array];
  const scale = bits === 8 ? 128 : 2 ** (bits - 1);
  const offset = bits === 8 ? 128 : 0;
  return raw.map((ch) => Float32Array.from(ch, (x) => (x - offset) / scale));
}

/** A valid WAV whose data chunk holds random bytes: every integer value, extremes included. */
function randomWav(frames: number, channels: number, depth: '8' | '16' | '24' | '32', seed: number): Buffer {
  const bytes = encodeWav(
    Array.from({ length: channels }, () => new Float32Array(frames)),
    16_000,
    depth,
  );
  let s = seed >>> 0;
  const dataStart = bytes.indexOf('data') + 8;
  for (let i = dataStart; i < bytes.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bytes[i] = s >>> 24;
  }
  // The extremes of each width at the start of the first channel.
  const width = Number(depth) / 8;
  if (frames >= 2) {
    bytes.fill(0xff, dataStart, dataStart + width); // -1 (or 255 unsigned)
    bytes.fill(0x00, dataStart + width * channels, dataStart + width * channels + width);
    if (width > 1) bytes[dataStart + width * channels + width - 1] = 0x80; // most negative
  }
  return bytes;
}

describe('WAV sample decoding', () => {
  const cases: ['8' | '16' | '24' | '32', number, number][] = [];
  for (const depth of ['8', '16', '24', '32'] as const)
    for (const channels of [1, 2, 3, 8])
      for (const frames of [1, 2, 3, 1000, 4097]) cases.push([depth, channels, frames]);

  it.each(cases)(
    'decodes %s-bit PCM, %i channels, %i frames exactly as wavefile unpacks it',
    (depth, channels, frames) => {
      const bytes = randomWav(frames, channels, depth, frames * 31 + channels);
      const want = wavefileReference(bytes);
      const check = (got: ReturnType<typeof decodeWav>) => {
        expect(got.length).toBe(frames);
        expect(got.channels.length).toBe(channels);
        got.channels.forEach((ch, c) =>
          expect(Buffer.from(ch.buffer).equals(Buffer.from(want[c]!.buffer))).toBe(true),
        );
      };
      check(decodeWav(bytes, 'x'));
      // The same bytes at an odd offset of a larger buffer (no aligned typed-array view).
      const shifted = new Uint8Array(bytes.length + 1).subarray(1);
      shifted.set(bytes);
      check(decodeWav(shifted, 'x'));
    },
  );

  it('maps the extremes of each width to -1 and just under 1 (1 for 32-bit, in float32)', () => {
    const full = (depth: '16' | '24' | '32') => {
      const bytes = randomWav(4, 1, depth, 1);
      const d = bytes.indexOf('data') + 8;
      const w = Number(depth) / 8;
      bytes.fill(0, d, d + 4 * w);
      bytes[d + w - 1] = 0x80; // most negative
      bytes.fill(0xff, d + w, d + 2 * w);
      bytes[d + 2 * w - 1] = 0x7f; // most positive
      return decodeWav(bytes, 'x').channels[0]!;
    };
    for (const depth of ['16', '24', '32'] as const) {
      const ch = full(depth);
      expect(ch[0]).toBe(-1);
      if (depth === '32') expect(ch[1]).toBe(1);
      else expect(ch[1]).toBeLessThan(1);
      expect(ch[1]).toBeGreaterThan(0.9999);
    }
  });
});
