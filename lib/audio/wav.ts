/**
 * WAV decoding and encoding through the `wavefile` library (no hand-written RIFF parser).
 * Decoding accepts 8/16/24/32-bit integer and 32/64-bit float PCM, any channel count, and
 * returns float samples in [-1, 1] per channel.
 */
import wavefilePkg from 'wavefile';
import { LockstepError } from '../errors.ts';

const { WaveFile } = wavefilePkg as unknown as { WaveFile: typeof import('wavefile').WaveFile };

export interface DecodedAudio {
  sampleRate: number;
  /** One Float32Array per channel, samples in [-1, 1] (non-finite input samples are kept as-is). */
  channels: Float32Array[];
  /** Bits per sample of the source ("8", "16", "24", "32", "32f", "64"). */
  bitDepth: string;
  /** Number of frames (samples per channel). */
  length: number;
}

/** Thrown for bytes that are not a decodable PCM WAV file. */
export class AudioDecodeError extends LockstepError {}

/**
 * Decodes a WAV file's bytes. `name` is used in error messages.
 * @throws AudioDecodeError for empty, non-RIFF, truncated or unsupported (compressed) files.
 */
export function decodeWav(bytes: Uint8Array, name = '<buffer>'): DecodedAudio {
  if (bytes.length === 0) throw new AudioDecodeError(`${name}: empty file. Provide a PCM WAV file.`);
  if (bytes.length < 12 || String.fromCharCode(...bytes.subarray(0, 4)) !== 'RIFF') {
    throw new AudioDecodeError(`${name}: not a WAV file (no RIFF header). Provide a PCM WAV file.`);
  }
  const wav = new WaveFile();
  try {
    wav.fromBuffer(bytes);
  } catch (err) {
    throw new AudioDecodeError(
      `${name}: unreadable WAV (${(err as Error).message}). Re-export it as PCM WAV.`,
      { cause: err },
    );
  }
  const fmt = wav.fmt as {
    audioFormat: number;
    numChannels: number;
    sampleRate: number;
    bitsPerSample: number;
  };
  // 1 = PCM integer, 3 = IEEE float, 65534 = WAVE_FORMAT_EXTENSIBLE (PCM or float inside).
  if (![1, 3, 65534].includes(fmt.audioFormat)) {
    throw new AudioDecodeError(
      `${name}: unsupported WAV encoding (format tag ${fmt.audioFormat}). Re-export it as PCM WAV.`,
    );
  }
  if (!fmt.numChannels || !fmt.sampleRate) {
    throw new AudioDecodeError(
      `${name}: WAV header has no channels or sample rate. Re-export it as PCM WAV.`,
    );
  }
  const bitDepth = wav.bitDepth as string;
  const data = (wav.data as { samples: Uint8Array }).samples;
  const bytesPerSample = Math.ceil(fmt.bitsPerSample / 8);
  const frameBytes = bytesPerSample * fmt.numChannels;
  if (data.length === 0) {
    return {
      sampleRate: fmt.sampleRate,
      channels: Array.from({ length: fmt.numChannels }, () => new Float32Array(0)),
      bitDepth,
      length: 0,
    };
  }
  if (data.length % frameBytes !== 0) {
    throw new AudioDecodeError(
      `${name}: truncated WAV data (${data.length} bytes is not a whole number of ${frameBytes}-byte frames). Re-export the file.`,
    );
  }
  let raw: Float64Array[];
  try {
    raw = wav.getSamples(false, Float64Array) as unknown as Float64Array[];
    if (fmt.numChannels === 1) raw = [raw as unknown as Float64Array];
  } catch (err) {
    throw new AudioDecodeError(
      `${name}: unreadable WAV samples (${(err as Error).message}). Re-export the file.`,
      {
        cause: err,
      },
    );
  }
  const isFloat = bitDepth === '32f' || bitDepth === '64';
  const bits = fmt.bitsPerSample;
  // Integer PCM: 8-bit is unsigned (offset 128); others are signed two's complement.
  const scale = isFloat ? 1 : bits === 8 ? 128 : 2 ** (bits - 1);
  const offset = !isFloat && bits === 8 ? 128 : 0;
  const channels = raw.map((ch) => {
    const out = new Float32Array(ch.length);
    for (let i = 0; i < ch.length; i++) out[i] = (ch[i] - offset) / scale;
    return out;
  });
  return { sampleRate: fmt.sampleRate, channels, bitDepth, length: channels[0]?.length ?? 0 };
}

/** Encodes mono or multi-channel float samples as WAV (default 16-bit PCM, or '32f'). */
export function encodeWav(
  channels: Float32Array[],
  sampleRate: number,
  bitDepth: '8' | '16' | '24' | '32' | '32f' = '16',
): Buffer {
  const wav = new WaveFile();
  const isFloat = bitDepth === '32f';
  const bits = isFloat ? 32 : Number(bitDepth);
  const scale = isFloat ? 1 : bits === 8 ? 127 : 2 ** (bits - 1) - 1;
  const offset = !isFloat && bits === 8 ? 128 : 0;
  const data = channels.map((ch) => {
    const out = isFloat ? new Float32Array(ch.length) : new Float64Array(ch.length);
    for (let i = 0; i < ch.length; i++) {
      const v = isFloat ? ch[i] : Math.max(-1, Math.min(1, ch[i]));
      out[i] = isFloat ? v : Math.round(v * scale) + offset;
    }
    return out;
  });
  wav.fromScratch(channels.length, sampleRate, bitDepth, channels.length === 1 ? data[0] : data);
  return Buffer.from(wav.toBuffer());
}

/** Averages channels into one. */
export function downmix(channels: Float32Array[]): Float32Array {
  if (channels.length === 1) return channels[0];
  const n = channels[0].length;
  const out = new Float32Array(n);
  for (const ch of channels) for (let i = 0; i < n; i++) out[i] += ch[i];
  for (let i = 0; i < n; i++) out[i] /= channels.length;
  return out;
}
