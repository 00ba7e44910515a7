/**
 * Request-path WAV decoding. The header is parsed and bounded by `readWavHeader` (the same
 * checks as `decodeWav`, so a hostile header is refused before any sample is read); for the common 16-bit PCM case the samples are converted straight from
 * the data chunk through an Int16 view, which gives bit-identical floats to `decodeWav` (x/32768)
 * at a fraction of the cost of wavefile's per-sample unpacking. Every other encoding goes through
 * `decodeWav` itself.
 */
import { decodeWav, readWavHeader, type DecodedAudio } from '../audio/wav.ts';

/** Decodes WAV bytes like `decodeWav`, faster for 16-bit PCM. */
export function decodeRequestWav(bytes: Uint8Array, name: string): DecodedAudio {
  // The header checks are decodeWav's own, so bounds and errors are the same on both paths.
  const header = readWavHeader(bytes, name);
  const channels = header.numChannels;
  const data = header.samples;
  if (header.audioFormat !== 1 || header.bitsPerSample !== 16 || data.length === 0) {
    return decodeWav(bytes, name);
  }
  const frames = data.length / (2 * channels);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = Array.from({ length: channels }, () => new Float32Array(frames));
  for (let c = 0; c < channels; c++) {
    const ch = out[c];
    for (let i = 0, o = c * 2; i < frames; i++, o += 2 * channels) ch[i] = view.getInt16(o, true) / 32768;
  }
  return { sampleRate: header.sampleRate, channels: out, bitDepth: '16', length: frames };
}
