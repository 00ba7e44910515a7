/**
 * WAV decoding and encoding. The `wavefile` library parses headers and chunks and encodes; the
 * samples are read straight from the checked data chunk (`decodeSamples`, the values wavefile
 * would unpack, without its per-sample cost), and the only bytes read here besides are chunk
 * positions, to bound the metadata chunks wavefile would read past the end of a file.
 * Decoding accepts 8/16/24/32-bit integer and 32/64-bit float PCM at 4–192 kHz with 1–8
 * channels (`WAV_LIMITS`), and returns float samples in [-1, 1] per channel. Headers are
 * untrusted input (request bodies, uploaded clips): `readWavHeader` bounds every field first.
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
 * Bounds on the header of an accepted WAV file. Every field is checked before any sample is
 * touched, so the work a file causes (decoding, resampling, featurizing) stays proportional to
 * the bytes it carries: a header cannot claim a 4 GHz sample rate, 65535 channels or a data chunk
 * larger than the file.
 */
export const WAV_LIMITS = {
  /** Lowest accepted sample rate (Hz). */
  minSampleRate: 4000,
  /** Highest accepted sample rate (Hz). */
  maxSampleRate: 192000,
  /** Most accepted channels. */
  maxChannels: 8,
} as const;

/** Accepted (format tag, bits per sample) pairs: 1 = PCM integer, 3 = IEEE float. */
const BITS_BY_FORMAT: Record<number, readonly number[]> = {
  1: [8, 16, 24, 32],
  3: [32, 64],
};

/** WAVE_FORMAT_EXTENSIBLE: the encoding is the sub-format GUID in the fmt extension. */
const EXTENSIBLE = 65534;
/** The last 12 bytes of KSDATAFORMAT_SUBTYPE_PCM/IEEE_FLOAT, as wavefile reads them (3 uint32). */
const KSDATAFORMAT_TAIL = [0x00100000, 0xaa000080, 0x719b3800];

/**
 * The encoding an extensible header really carries: its sub-format's format tag. wavefile reads
 * every extensible file as integer PCM, so a float file would decode as noise (and hide its NaN
 * samples from the checks) and a compressed one as PCM, unless the sub-format is read here.
 */
function extensibleFormat(fmt: { cbSize?: number; subformat?: number[] }, name: string): number {
  const sub = fmt.subformat ?? [];
  if ((fmt.cbSize ?? 0) < 22 || sub.length !== 4 || KSDATAFORMAT_TAIL.some((v, i) => sub[i + 1] !== v)) {
    throw new AudioDecodeError(
      `${name}: WAV header extensible format without a PCM or float sub-format GUID. Re-export it as PCM WAV.`,
    );
  }
  const tag = sub[0];
  if (!BITS_BY_FORMAT[tag]) {
    throw new AudioDecodeError(
      `${name}: unsupported WAV encoding (extensible sub-format ${tag}). Re-export it as PCM WAV.`,
    );
  }
  return tag;
}

/** What `readWavHeader` returns: the checked format and the data chunk's bytes. */
export interface WavHeader {
  /** 1 = PCM integer, 3 = IEEE float (an extensible file's sub-format). */
  audioFormat: number;
  numChannels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Bytes per frame (all channels of one sample instant). */
  blockAlign: number;
  /** wavefile's name for the encoding ("8", "16", "24", "32", "32f", "64"). */
  bitDepth: string;
  /** The data chunk's bytes (exactly its declared size; a whole number of frames). */
  samples: Uint8Array;
}

function badField(name: string, field: string, value: number, fix: string): AudioDecodeError {
  return new AudioDecodeError(`${name}: WAV header ${field} out of range "${value}". ${fix}`);
}

/**
 * The first top-level chunk of each id, where wavefile's chunk index puts it: chunks follow the
 * 12-byte RIFF/WAVE header, each 8 bytes of id and size, then its body padded to an even length.
 * Only the positions are read here (not a parser: wavefile still reads every chunk).
 */
function firstChunks(bytes: Uint8Array, view: DataView): Map<string, { size: number; start: number }> {
  const chunks = new Map<string, { size: number; start: number }>();
  for (let i = 12; i <= bytes.length - 8;) {
    const id = String.fromCharCode(bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]);
    const size = view.getUint32(i + 4, true);
    if (!chunks.has(id)) chunks.set(id, { size, start: i + 8 });
    i += 8 + size;
    if (i % 2) i++;
  }
  return chunks;
}

/**
 * wavefile reads a `cue ` chunk's points, a `smpl` chunk's loops and an `iXML`, `_PMX` or `bext`
 * chunk's text as far as the chunk's own count or size says, bytes present or not: an 88-byte file
 * claiming 2^32 - 1 cue points would hold the thread for hours and exhaust the heap. Each of those
 * reads (of the first chunk of each id, the one wavefile reads) must end within the file.
 */
function checkMetadataChunks(bytes: Uint8Array, name: string): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks = firstChunks(bytes, view);
  const u32 = (at: number) => (at + 4 <= bytes.length ? view.getUint32(at, true) : 0);
  /** The read `extent(count)` of chunk `id`, its `count` read from the chunk, must fit the file. */
  const bound = (
    id: string,
    field: string,
    count: (chunk: { size: number; start: number }) => number,
    extent: (n: number) => number,
  ) => {
    const chunk = chunks.get(id);
    if (!chunk) return;
    const n = count(chunk);
    const present = Math.max(0, bytes.length - chunk.start);
    if (extent(n) > present) {
      throw badField(name, `'${id}' ${field}`, n, `Only ${present} bytes follow it: the file is truncated.`);
    }
  };
  bound(
    'cue ',
    'points',
    (c) => u32(c.start),
    (points) => 4 + 24 * points,
  );
  bound(
    'smpl',
    'loops',
    (c) => u32(c.start + 28),
    (loops) => 36 + 24 * loops,
  );
  for (const id of ['iXML', '_PMX', 'bext'])
    bound(
      id,
      'size',
      (c) => c.size,
      (size) => size,
    );
}

/**
 * Parses and bounds a WAV header (through wavefile; no hand-written RIFF parser). Checks, in
 * order: RIFF/WAVE signature, the extent of the metadata chunks wavefile reads (`cue `, `smpl`,
 * `iXML`, `_PMX`, `bext`) against the bytes present, format tag (PCM, IEEE float or extensible), channels (1–8),
 * sample rate (integer Hz, 4000–192000), bits per sample for the format, block align =
 * channels × bytes per sample, byte rate = sample rate × block align, the RIFF size and the data
 * size against the bytes present, and that the data is a whole number of frames.
 * @throws AudioDecodeError naming the field at fault and its value.
 */
export function readWavHeader(bytes: Uint8Array, name = '<buffer>'): WavHeader {
  if (bytes.length === 0) throw new AudioDecodeError(`${name}: empty file. Provide a PCM WAV file.`);
  if (bytes.length < 12 || String.fromCharCode(...bytes.subarray(0, 4)) !== 'RIFF') {
    throw new AudioDecodeError(`${name}: not a WAV file (no RIFF header). Provide a PCM WAV file.`);
  }
  const wav = new WaveFile();
  // Bounded before wavefile reads the chunks: the work must stay proportional to the bytes.
  if (String.fromCharCode(...bytes.subarray(8, 12)) === 'WAVE') checkMetadataChunks(bytes, name);
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
    byteRate: number;
    blockAlign: number;
    bitsPerSample: number;
  };
  const reexport = 'Re-export it as PCM WAV.';
  // 1 = PCM integer, 3 = IEEE float, 65534 = WAVE_FORMAT_EXTENSIBLE (PCM or float inside).
  const encoding =
    fmt.audioFormat === EXTENSIBLE ? extensibleFormat(wav.fmt as object, name) : fmt.audioFormat;
  const bitsAllowed = BITS_BY_FORMAT[encoding];
  if (!bitsAllowed) {
    throw new AudioDecodeError(
      `${name}: unsupported WAV encoding (format tag ${fmt.audioFormat}). Re-export it as PCM WAV.`,
    );
  }
  if (!(fmt.numChannels >= 1 && fmt.numChannels <= WAV_LIMITS.maxChannels)) {
    throw badField(name, 'numChannels', fmt.numChannels, `Send 1 to ${WAV_LIMITS.maxChannels} channels.`);
  }
  if (
    !Number.isInteger(fmt.sampleRate) ||
    fmt.sampleRate < WAV_LIMITS.minSampleRate ||
    fmt.sampleRate > WAV_LIMITS.maxSampleRate
  ) {
    throw badField(
      name,
      'sampleRate',
      fmt.sampleRate,
      `Send audio sampled at ${WAV_LIMITS.minSampleRate} to ${WAV_LIMITS.maxSampleRate} Hz.`,
    );
  }
  if (!bitsAllowed.includes(fmt.bitsPerSample)) {
    throw badField(
      name,
      'bitsPerSample',
      fmt.bitsPerSample,
      `Format tag ${encoding} takes ${bitsAllowed.join(', ')} bits; ${reexport}`,
    );
  }
  const validBits = (wav.fmt as { validBitsPerSample?: number }).validBitsPerSample ?? 0;
  if (fmt.audioFormat === EXTENSIBLE && validBits > fmt.bitsPerSample) {
    throw badField(name, 'validBitsPerSample', validBits, `At most ${fmt.bitsPerSample} bits; ${reexport}`);
  }

  const blockAlign = fmt.numChannels * (fmt.bitsPerSample / 8);
  if (fmt.blockAlign !== blockAlign) {
    throw badField(
      name,
      'blockAlign',
      fmt.blockAlign,
      `${fmt.numChannels} channels of ${fmt.bitsPerSample} bits make ${blockAlign}; ${reexport}`,
    );
  }
  if (fmt.byteRate !== fmt.sampleRate * blockAlign) {
    throw badField(
      name,
      'byteRate',
      fmt.byteRate,
      `${fmt.sampleRate} Hz × ${blockAlign} bytes make ${fmt.sampleRate * blockAlign}; ${reexport}`,
    );
  }
  const riffSize = (wav as unknown as { chunkSize: number }).chunkSize;
  if (riffSize > bytes.length - 8) {
    throw badField(
      name,
      'RIFF size',
      riffSize,
      `Only ${bytes.length - 8} bytes follow it: the file is truncated.`,
    );
  }
  const data = wav.data as { chunkSize: number; samples: Uint8Array };
  if (data.chunkSize > data.samples.length) {
    throw badField(
      name,
      'data size',
      data.chunkSize,
      `Only ${data.samples.length} bytes are present: the file is truncated.`,
    );
  }
  // wavefile includes the pad byte of an odd-sized chunk; the samples are exactly chunkSize bytes.
  const samples = data.samples.subarray(0, data.chunkSize);
  if (samples.length % blockAlign !== 0) {
    throw new AudioDecodeError(
      `${name}: truncated WAV data (${samples.length} bytes is not a whole number of ${blockAlign}-byte frames). Re-export the file.`,
    );
  }
  // wavefile names the encoding from format tag 3 only; an extensible float file is float too.
  const bitDepth = encoding === 3 ? (fmt.bitsPerSample === 32 ? '32f' : '64') : String(fmt.bitsPerSample);
  return {
    audioFormat: encoding,
    numChannels: fmt.numChannels,
    sampleRate: fmt.sampleRate,
    bitsPerSample: fmt.bitsPerSample,
    blockAlign,
    bitDepth,
    samples,
  };
}

/**
 * Decodes a WAV file's bytes. `name` is used in error messages.
 * @throws AudioDecodeError for empty, non-RIFF, truncated, out-of-bounds (see `readWavHeader`) or
 * unsupported (compressed) files.
 */
export function decodeWav(bytes: Uint8Array, name = '<buffer>'): DecodedAudio {
  return decodeSamples(readWavHeader(bytes, name));
}

/**
 * The samples of a checked header (`readWavHeader`), as floats in [-1, 1]: integer PCM is
 * (x - offset) / scale with 8-bit unsigned (offset 128, scale 128) and 16/24/32-bit signed
 * (scale 2^(bits-1)), read straight from the data chunk. The values are those wavefile's
 * `getSamples` unpacks, scaled the same way (test/audio/wav-decode.test.ts compares the two),
 * at a fraction of the cost: wavefile unpacks sample by sample through a generic bit reader,
 * which was half the featurize stage's compute.
 */
export function decodeSamples(header: WavHeader): DecodedAudio {
  const { numChannels, sampleRate, bitDepth } = header;
  const frames = header.samples.length / header.blockAlign;
  if (frames === 0) {
    return {
      sampleRate,
      channels: Array.from({ length: numChannels }, () => new Float32Array(0)),
      bitDepth,
      length: 0,
    };
  }
  if (header.audioFormat === 3) return decodeFloat(header, frames);
  return decodeInteger(header, frames);
}

/** WAV samples are little-endian; an Int16Array view reads them as such only on such a machine. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * `out[i] = pcm[i] / 32768`, a function of its own so V8 optimizes the loop as a whole function
 * with complete type feedback, not only by entering optimized code in the middle of its caller
 * (in one fresh server's worker such a loop ran 4x slower than in the other for its first 2,500
 * requests).
 */
function pcm16ToFloat(pcm: Int16Array, out: Float32Array): void {
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
}

/** One channel of interleaved integer PCM, `bits` wide, starting at byte `o`, `stride` apart. */
function integerChannel(view: DataView, bits: number, o: number, stride: number, out: Float32Array): void {
  const n = out.length;
  if (bits === 16) {
    for (let i = 0; i < n; i++, o += stride) out[i] = view.getInt16(o, true) / 32768;
  } else if (bits === 24) {
    for (let i = 0; i < n; i++, o += stride) {
      out[i] = (view.getUint8(o) | (view.getUint8(o + 1) << 8) | (view.getInt8(o + 2) << 16)) / 8388608;
    }
  } else if (bits === 32) {
    for (let i = 0; i < n; i++, o += stride) out[i] = view.getInt32(o, true) / 2147483648;
  } else {
    for (let i = 0; i < n; i++, o += stride) out[i] = (view.getUint8(o) - 128) / 128;
  }
}

function decodeInteger(header: WavHeader, frames: number): DecodedAudio {
  const { samples, numChannels, sampleRate, bitDepth, bitsPerSample, blockAlign } = header;
  const channels = Array.from({ length: numChannels }, () => new Float32Array(frames));
  if (bitsPerSample === 16 && numChannels === 1 && LITTLE_ENDIAN && samples.byteOffset % 2 === 0) {
    // Mono 16-bit, aligned (the usual clip): the data chunk read as Int16 in place.
    pcm16ToFloat(new Int16Array(samples.buffer, samples.byteOffset, frames), channels[0]);
  } else {
    const view = new DataView(samples.buffer, samples.byteOffset, samples.byteLength);
    const width = bitsPerSample / 8;
    for (let c = 0; c < numChannels; c++)
      integerChannel(view, bitsPerSample, c * width, blockAlign, channels[c]);
  }
  return { sampleRate, channels, bitDepth, length: frames };
}

/**
 * IEEE float samples, read straight from the checked data chunk: wavefile unpacks an extensible
 * (65534) float file as integers, and a float sample needs no scaling anyway.
 */
function decodeFloat(header: WavHeader, frames: number): DecodedAudio {
  const { samples, numChannels, sampleRate, bitDepth } = header;
  const width = header.bitsPerSample / 8;
  const view = new DataView(samples.buffer, samples.byteOffset, samples.byteLength);
  const channels = Array.from({ length: numChannels }, () => new Float32Array(frames));
  for (let c = 0; c < numChannels; c++) {
    const ch = channels[c];
    for (let i = 0, o = c * width; i < frames; i++, o += header.blockAlign) {
      ch[i] = width === 4 ? view.getFloat32(o, true) : view.getFloat64(o, true);
    }
  }
  return { sampleRate, channels, bitDepth, length: frames };
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
