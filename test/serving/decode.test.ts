import { describe, expect, it } from 'vitest';
import { decodeWav, encodeWav } from '../../lib/audio/wav.ts';
import { ClipTooLongError, decodeRequestWav } from '../../lib/serving/decode.ts';

function signal(n: number, phase: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++)
    x[i] = Math.max(-1, Math.min(1, 1.2 * Math.sin(i * 0.013 + phase) + 0.01 * Math.cos(i * 1.7)));
  return x;
}

describe('request WAV decoding', () => {
  const cases: [string, Float32Array[], number, '8' | '16' | '24' | '32f'][] = [
    ['16-bit mono', [signal(4001, 0)], 16000, '16'],
    ['16-bit stereo', [signal(2000, 0), signal(2000, 1)], 22050, '16'],
    ['24-bit mono (delegated)', [signal(1000, 0)], 16000, '24'],
    ['8-bit mono (delegated)', [signal(1000, 0)], 8000, '8'],
    ['float mono (delegated)', [signal(1000, 0)], 48000, '32f'],
  ];
  it.each(cases)(
    'request WAV decoding matches decodeWav bit for bit (%s)',
    (_name, channels, rate, depth) => {
      const bytes = encodeWav(channels, rate, depth);
      const fast = decodeRequestWav(bytes, 'x');
      const ref = decodeWav(bytes, 'x');
      expect(fast.sampleRate).toBe(ref.sampleRate);
      expect(fast.length).toBe(ref.length);
      expect(fast.bitDepth).toBe(ref.bitDepth);
      expect(fast.channels.length).toBe(ref.channels.length);
      fast.channels.forEach((ch, c) =>
        expect(Buffer.from(ch.buffer).equals(Buffer.from(ref.channels[c].buffer))).toBe(true),
      );
    },
  );

  it('request WAV decoding reads 16-bit mono at an odd byte offset (no aligned Int16 view) bit for bit', () => {
    const bytes = encodeWav([signal(3001, 2)], 16000, '16');
    const shifted = new Uint8Array(bytes.length + 1).subarray(1);
    shifted.set(bytes);
    const fast = decodeRequestWav(shifted, 'x');
    const ref = decodeWav(bytes, 'x');
    expect(fast.length).toBe(3001);
    expect(Buffer.from(fast.channels[0].buffer).equals(Buffer.from(ref.channels[0].buffer))).toBe(true);
  });

  it('request WAV decoding reports malformed files like decodeWav', () => {
    const good = encodeWav([signal(100, 0)], 16000, '16');
    const truncated = Buffer.from(good.subarray(0, good.length - 1));
    truncated.writeUInt32LE(truncated.length - 8, 4);
    truncated.writeUInt32LE(199, 40);
    for (const bad of [Buffer.alloc(0), Buffer.from('not a wav file at all'), truncated]) {
      let want = '';
      try {
        decodeWav(bad, 'f');
      } catch (err) {
        want = (err as Error).message;
      }
      expect(want).not.toBe('');
      expect(() => decodeRequestWav(bad, 'f')).toThrow(want);
    }
  });

  it('request WAV decoding refuses a clip longer than maxSeconds from its header, before decoding its samples', () => {
    // 5 minutes of 8-bit 4 kHz audio: 1.2 MB, well inside the 16 MB body limit.
    const long = encodeWav([new Float32Array(4000 * 300).fill(0.25)], 4000, '8');
    expect(() => decodeRequestWav(long, 'instances[0].audio', 30)).toThrow(ClipTooLongError);
    expect(() => decodeRequestWav(long, 'instances[0].audio', 30)).toThrow(
      'instances[0].audio: too long "300.0 s". Send clips of at most 30 s.',
    );
    const time = (f: () => unknown): number => {
      const t = performance.now();
      try {
        f();
      } catch {
        // the refusal is what is timed
      }
      return performance.now() - t;
    };
    const median = (f: () => unknown): number => [0, 1, 2, 3, 4].map(() => time(f)).sort((a, b) => a - b)[2];
    // The refusal reads the header only; decoding unpacks every sample (measured here, same load).
    const refused = median(() => decodeRequestWav(long, 'x', 30));
    const decoded = median(() => decodeRequestWav(long, 'x'));
    expect(refused).toBeLessThan(decoded / 3);
  });
});
