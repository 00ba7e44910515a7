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

/** A WAVE_FORMAT_EXTENSIBLE (65534) file: the encoding sits in the sub-format GUID's first word. */
function extensibleWav(o: {
  subformat: number;
  bits: number;
  data: Uint8Array;
  validBits?: number;
  guid?: number[];
}) {
  const ch = 1;
  const sr = 16000;
  const blockAlign = (ch * o.bits) / 8;
  const b = Buffer.alloc(12 + 8 + 40 + 8 + o.data.length);
  b.write('RIFF', 0);
  b.writeUInt32LE(b.length - 8, 4);
  b.write('WAVE', 8);
  b.write('fmt ', 12);
  b.writeUInt32LE(40, 16);
  b.writeUInt16LE(65534, 20);
  b.writeUInt16LE(ch, 22);
  b.writeUInt32LE(sr, 24);
  b.writeUInt32LE(sr * blockAlign, 28);
  b.writeUInt16LE(blockAlign, 32);
  b.writeUInt16LE(o.bits, 34);
  b.writeUInt16LE(22, 36);
  b.writeUInt16LE(o.validBits ?? o.bits, 38);
  b.writeUInt32LE(4, 40);
  b.writeUInt32LE(o.subformat, 44);
  // KSDATAFORMAT_SUBTYPE_* tail: 00000000-0010-0080-00AA-00389B71
  Buffer.from(o.guid ?? [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71]).copy(b, 48);
  b.write('data', 60);
  b.writeUInt32LE(o.data.length, 64);
  Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength).copy(b, 68);
  return new Uint8Array(b);
}

describe('decodeWav extensible headers', () => {
  const x = tone(800, 16000);

  it.each([
    ['32-bit float', 3, 32, new Uint8Array(new Float32Array(x).buffer), '32f'],
    ['64-bit float', 3, 64, new Uint8Array(new Float64Array(x).buffer), '64'],
    ['24-bit PCM', 1, 24, new Uint8Array(encodeWav([x], 16000, '24').subarray(44)), '24'],
  ] as const)(
    'decodeWav reads an extensible %s file as its sub-format says',
    (_n, sub, bits, data, depth) => {
      const d = decodeWav(extensibleWav({ subformat: sub, bits, data }), 'e.wav');
      expect(d.bitDepth).toBe(depth);
      let max = 0;
      for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(d.channels[0][i] - x[i]));
      expect(max).toBeLessThan(1e-6);
    },
  );

  it('decodeWav keeps the NaN samples of an extensible float file for the checks to see', () => {
    const nan = new Float32Array(x);
    nan[100] = NaN;
    const d = decodeWav(extensibleWav({ subformat: 3, bits: 32, data: new Uint8Array(nan.buffer) }), 'e.wav');
    expect(Number.isNaN(d.channels[0][100])).toBe(true);
  });

  it.each([
    [
      'a compressed sub-format (85, MP3)',
      { subformat: 85, bits: 16 },
      /e\.wav: unsupported WAV encoding \(extensible sub-format 85\)/,
    ],
    ['64-bit integer PCM', { subformat: 1, bits: 64 }, /e\.wav: WAV header bitsPerSample out of range "64"/],
    ['16-bit float', { subformat: 3, bits: 16 }, /e\.wav: WAV header bitsPerSample out of range "16"/],
    [
      'more valid bits than the container',
      { subformat: 1, bits: 16, validBits: 40 },
      /validBitsPerSample out of range "40"/,
    ],
    [
      'a sub-format GUID that is not KSDATAFORMAT',
      { subformat: 1, bits: 16, guid: Array(12).fill(0x41) },
      /e\.wav: WAV header extensible format without a PCM or float sub-format GUID/,
    ],
  ])('decodeWav refuses an extensible header with %s, naming it', (_n, o, re) => {
    const bytes = extensibleWav({ ...o, data: new Uint8Array((o.bits / 8) * 100) });
    expect(() => decodeWav(bytes, 'e.wav')).toThrow(AudioDecodeError);
    expect(() => decodeWav(bytes, 'e.wav')).toThrow(re);
  });
});

/** A valid 16-bit clip followed by one metadata chunk whose count or size claims far more bytes. */
function withMetadata(id: string, body: Buffer): Buffer {
  const chunk = Buffer.concat([Buffer.from(id), Buffer.alloc(4), body]);
  chunk.writeUInt32LE(id === 'cue ' || id === 'smpl' ? body.length : 400_000, 4);
  const f = Buffer.concat([encodeWav([tone(16, 16000)], 16000, '16'), chunk]);
  f.writeUInt32LE(f.length - 8, 4);
  return f;
}

describe('decodeWav metadata chunks', () => {
  const count = (n: number, at: number, size: number) => {
    const b = Buffer.alloc(size);
    b.writeUInt32LE(n, at);
    return b;
  };
  it.each([
    ['cue ', count(300_000, 0, 4), /m\.wav: WAV header 'cue ' points out of range "300000"\. Only 4 bytes/],
    ['smpl', count(300_000, 28, 36), /m\.wav: WAV header 'smpl' loops out of range "300000"\. Only 36 bytes/],
    ['iXML', Buffer.alloc(4), /m\.wav: WAV header 'iXML' size out of range "400000"\. Only 4 bytes/],
    ['_PMX', Buffer.alloc(4), /m\.wav: WAV header '_PMX' size out of range "400000"\. Only 4 bytes/],
    ['bext', Buffer.alloc(4), /m\.wav: WAV header 'bext' size out of range "400000"\. Only 4 bytes/],
  ])(
    "decodeWav refuses a '%s' chunk that claims more than the file holds, before reading it",
    (id, body, re) => {
      // wavefile reads such a chunk as far as it claims: 2^32 - 1 cue points in an 88-byte file
      // would hold the thread for hours.
      const bytes = withMetadata(id, body);
      expect(bytes.length).toBeLessThan(200);
      expect(() => decodeWav(bytes, 'm.wav')).toThrow(AudioDecodeError);
      expect(() => decodeWav(bytes, 'm.wav')).toThrow(re);
    },
  );

  it('decodeWav still reads metadata chunks that fit the file', () => {
    const cue = Buffer.alloc(4 + 24);
    cue.writeUInt32LE(1, 0);
    const bytes = withMetadata('cue ', cue);
    expect(decodeWav(bytes, 'm.wav').length).toBe(16);
  });
});
