/**
 * Bad audio and bad data for tests, one case per file, in the TESS layout of the demo corpus
 * (speaker `B01`, so it joins a tiny corpus as one extra speaker). Each case says what validate
 * must report and whether featurize can convert it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encodeWav } from '../../lib/audio/wav.ts';

export interface BadAudioCase {
  /** Case name (also the TESS "word" in the file name). */
  name: string;
  /** Path relative to the corpus root (a folder path for `emptyfolder`). */
  path: string;
  /** The anomaly kind validate must report for it. */
  kind: string;
  severity: 'error' | 'warning';
  /** `convert`: a supported format featurize converts; `reject`: validate reports it, featurize skips it. */
  expect: 'convert' | 'reject';
}

/** A voice-like test signal: a 140 Hz harmonic tone with a syllable envelope, at `rate` Hz. */
export function voiceLike(rate: number, seconds = 1.2, amplitude = 0.3): Float32Array {
  const n = Math.round(rate * seconds);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const env =
      Math.sin(Math.PI * Math.min(1, t / seconds)) ** 2 * (0.6 + 0.4 * Math.sin(2 * Math.PI * 3 * t));
    let v = 0;
    for (let h = 1; h <= 8; h++) v += Math.sin(2 * Math.PI * 140 * h * t) / h;
    x[i] = amplitude * env * v * 0.5;
  }
  return x;
}

const file = (emotion: string, word: string): string => `B01_${emotion}/B01_${word}_${emotion}.wav`;

/**
 * Writes every bad case under `dir` and returns the cases. Labels are valid (`angry`, `sad`, ...)
 * except for the unknown-label case, so each file shows exactly its own problem.
 */
export async function writeBadAudio(
  dir: string,
  options: { sampleRate?: number } = {},
): Promise<BadAudioCase[]> {
  const rate = options.sampleRate ?? 16000;
  const good = encodeWav([voiceLike(rate)], rate, '16');
  const cases: (BadAudioCase & { bytes?: Uint8Array | string })[] = [];
  const add = (c: BadAudioCase, bytes?: Uint8Array | string): void => void cases.push({ ...c, bytes });

  // Not decodable at all.
  add(
    {
      name: 'truncated',
      path: file('angry', 'truncated'),
      kind: 'unreadable',
      severity: 'error',
      expect: 'reject',
    },
    good.subarray(0, 44 + 1001),
  );
  const corrupt = Buffer.from(good);
  corrupt.write('JUNK', 8, 'latin1'); // RIFF header kept, WAVE id destroyed
  corrupt.fill(0xff, 12, 40);
  add(
    {
      name: 'corrupt',
      path: file('angry', 'corrupt'),
      kind: 'unreadable',
      severity: 'error',
      expect: 'reject',
    },
    corrupt,
  );
  add(
    {
      name: 'zerolength',
      path: file('disgust', 'zerolength'),
      kind: 'unreadable',
      severity: 'error',
      expect: 'reject',
    },
    new Uint8Array(0),
  );
  add(
    {
      name: 'textfile',
      path: file('disgust', 'textfile'),
      kind: 'unreadable',
      severity: 'error',
      expect: 'reject',
    },
    'This is not audio, only text named .wav\n',
  );

  // Decodable but unusable.
  const nan = voiceLike(rate);
  nan[100] = Number.NaN;
  nan[200] = Number.POSITIVE_INFINITY;
  add(
    { name: 'nan', path: file('fear', 'nan'), kind: 'non_finite', severity: 'error', expect: 'reject' },
    encodeWav([nan], rate, '32f'),
  );
  add(
    { name: 'silent', path: file('fear', 'silent'), kind: 'silent', severity: 'error', expect: 'reject' },
    encodeWav([new Float32Array(rate)], rate, '16'),
  );
  add(
    {
      name: 'tooshort',
      path: file('happy', 'tooshort'),
      kind: 'too_short',
      severity: 'error',
      expect: 'reject',
    },
    encodeWav([voiceLike(rate, 0.1)], rate, '16'),
  );
  add(
    {
      name: 'unknownlabel',
      path: 'B01_bored/B01_unknownlabel_bored.wav',
      kind: 'unknown_label',
      severity: 'error',
      expect: 'reject',
    },
    good,
  );

  // Supported formats featurize converts: validate warns.
  for (const depth of ['8', '24', '32', '32f'] as const) {
    add(
      {
        name: `pcm${depth}`,
        path: file('neutral', `pcm${depth}`),
        kind: 'bit_depth_mismatch',
        severity: 'warning',
        expect: 'convert',
      },
      encodeWav([voiceLike(rate)], rate, depth),
    );
  }
  const stereo = voiceLike(rate);
  add(
    {
      name: 'stereo',
      path: file('sad', 'stereo'),
      kind: 'channel_mismatch',
      severity: 'warning',
      expect: 'convert',
    },
    encodeWav([stereo, stereo.map((v) => v * 0.8)], rate, '16'),
  );
  for (const r of [8000, 22050, 44100, 48000]) {
    add(
      {
        name: `rate${r}`,
        path: file('surprise', `rate${r}`),
        kind: 'sample_rate_mismatch',
        severity: 'warning',
        expect: 'convert',
      },
      encodeWav([voiceLike(r)], r, '16'),
    );
  }
  const clipped = voiceLike(rate, 1.2, 3);
  add(
    {
      name: 'clipped',
      path: file('angry', 'clipped'),
      kind: 'clipped',
      severity: 'warning',
      expect: 'convert',
    },
    encodeWav([clipped], rate, '16'),
  );
  add(
    {
      name: 'toolong',
      path: file('sad', 'toolong'),
      kind: 'too_long',
      severity: 'warning',
      expect: 'convert',
    },
    encodeWav([voiceLike(rate, 21)], rate, '16'),
  );

  // A label folder with no files.
  add({
    name: 'emptyfolder',
    path: 'B02_happy',
    kind: 'empty_folder',
    severity: 'warning',
    expect: 'reject',
  });

  for (const c of cases) {
    const target = path.join(dir, c.path);
    if (c.bytes === undefined) {
      await mkdir(target, { recursive: true });
      continue;
    }
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, c.bytes);
  }
  return cases.map(({ bytes: _bytes, ...c }) => c);
}
