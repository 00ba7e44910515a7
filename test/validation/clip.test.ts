import { describe, expect, it } from 'vitest';
import { measureClip } from '../../lib/validation/clip.ts';
import type { DecodedAudio } from '../../lib/audio/wav.ts';

/** A mono clip with loud, quiet, clipped and non-finite stretches (deterministic). */
function clip(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    const region = Math.floor(i / 700) % 5;
    out[i] =
      region === 0
        ? u - 0.5
        : region === 1
          ? (u - 0.5) * 1e-5
          : region === 2
            ? u < 0.5
              ? 1
              : -0.9995
            : u * 0.3;
    if (u < 0.002) out[i] = NaN;
    else if (u > 0.999) out[i] = u > 0.9995 ? Infinity : -Infinity;
  }
  return out;
}

const audio = (channels: (Float32Array | Float64Array)[], sampleRate = 16_000): DecodedAudio =>
  ({ sampleRate, channels, bitDepth: '16', length: channels[0]!.length }) as DecodedAudio;

describe('measureClip', () => {
  it('measures a mono Float32Array clip exactly as the general path measures the same samples', () => {
    for (const [n, seed, rate] of [
      [48_000, 1, 16_000],
      [12_345, 7, 8_000],
      [1, 3, 16_000],
      [319, 11, 16_000],
      [0, 5, 16_000],
    ] as const) {
      const f32 = clip(n, seed);
      // A Float64Array holds the same values and takes the general (multi-channel) loops.
      const fast = measureClip(audio([f32], rate), -45);
      const general = measureClip(audio([Float64Array.from(f32)], rate), -45);
      expect(fast).toEqual(general);
      if (n > 1000) {
        expect(fast.nonFinite).toBeGreaterThan(0);
        expect(fast.clippingRatio).toBeGreaterThan(0);
        expect(fast.silenceRatio).toBeGreaterThan(0);
        expect(fast.silenceRatio).toBeLessThan(1);
      }
    }
  });

  it('measures every sample of a mono Float32Array clip whose sample rate is NaN, as the general path does', () => {
    const f32 = clip(4_000, 4);
    const fast = measureClip(audio([f32], NaN), -45);
    const general = measureClip(audio([Float64Array.from(f32)], NaN), -45);
    expect(fast).toEqual(general);
    expect(fast.nonFinite).toBeGreaterThan(0);
    expect(fast.peak).toBeGreaterThan(0);
  });

  it('counts every window of a multi-channel clip over the channel pair', () => {
    const a = clip(4_000, 2);
    const b = clip(4_000, 9);
    const stats = measureClip(audio([a, b]), -45);
    expect(stats.channels).toBe(2);
    const nonFinite = [...a, ...b].filter((v) => !Number.isFinite(v)).length;
    expect(stats.nonFinite).toBe(nonFinite);
  });
});
