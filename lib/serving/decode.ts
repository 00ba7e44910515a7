/**
 * Request-path WAV decoding: `decodeWav`'s header checks and sample decoding (one home,
 * lib/audio/wav.ts), with the clip's length bounded from its header before any sample is read.
 */
import { decodeSamples, readWavHeader, type DecodedAudio } from '../audio/wav.ts';
import { LockstepError } from '../errors.ts';

/** A clip longer than the server takes, found from its header before any sample is decoded. */
export class ClipTooLongError extends LockstepError {}

/**
 * Decodes WAV bytes as `decodeWav` does. A clip whose header says it lasts more than `maxSeconds`
 * is refused before its samples are decoded or measured, so a long low-rate clip that fits the
 * body limit (a 16 MB body holds 50 minutes of 8-bit 4 kHz audio) cannot hold the server's thread
 * for seconds only to be refused.
 * @throws AudioDecodeError for a header `readWavHeader` refuses; ClipTooLongError.
 */
export function decodeRequestWav(bytes: Uint8Array, name: string, maxSeconds = Infinity): DecodedAudio {
  const header = readWavHeader(bytes, name);
  const seconds = header.samples.length / header.blockAlign / header.sampleRate;
  if (seconds > maxSeconds) {
    throw new ClipTooLongError(
      `${name}: too long "${seconds.toFixed(1)} s". Send clips of at most ${maxSeconds} s.`,
    );
  }
  return decodeSamples(header);
}
