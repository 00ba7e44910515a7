import { describe, expect, it } from 'vitest';
import { decodeWav, encodeWav, downmix, AudioDecodeError } from '../../lib/audio/wav.ts';

function tone(n: number, sr: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = 0.5 * Math.sin((2 * Math.PI * 440 * i) / sr);
  return x;
}

describe('decodeWav', () => {
  it.each([
    ['8', 1 / 64],
    ['16', 1e-4],
    ['24', 1e-6],
    ['32', 1e-8],
    ['32f', 1e-7],
  ] as const)('decodeWav round-trips %s-bit audio', (depth, tol) => {
    const x = tone(1000, 16000);
    const d = decodeWav(encodeWav([x], 16000, depth), 'a.wav');
    expect(d.sampleRate).toBe(16000);
    expect(d.length).toBe(1000);
    let max = 0;
    for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(d.channels[0][i] - x[i]));
    expect(max).toBeLessThan(tol);
  });

  it('decodeWav keeps stereo channels and downmix averages them', () => {
    const a = tone(100, 8000);
    const b = new Float32Array(100);
    const d = decodeWav(encodeWav([a, b], 8000, '16'));
    expect(d.channels).toHaveLength(2);
    const m = downmix(d.channels);
    expect(m[10]).toBeCloseTo(a[10] / 2, 3);
  });

  it.each([
    ['empty', new Uint8Array(0), /empty file/],
    ['text', new TextEncoder().encode('hello, I am not audio at all'), /not a WAV file/],
  ])('decodeWav rejects %s input with a one-line reason', (_n, bytes, re) => {
    expect(() => decodeWav(bytes, 'x.wav')).toThrow(AudioDecodeError);
    expect(() => decodeWav(bytes, 'x.wav')).toThrow(re);
  });

  it('decodeWav rejects a truncated file', () => {
    const full = encodeWav([tone(1000, 16000)], 16000, '24');
    const cut = full.subarray(0, full.length - 1);
    expect(() => decodeWav(cut, 't.wav')).toThrow(/t\.wav: /);
  });
});
