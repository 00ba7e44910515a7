/**
 * The predict routes' JSON body, read from the request's bytes. The body clients send nearly
 * always, `{"instances": [{"audio": "<base64 WAV>"}, ...]}`, is recognised as bytes and each
 * audio string is base64-decoded straight from its place in the body, a 16 KB piece at a time:
 * no string of the whole body, no JSON.parse scan and copy of it, no 128 KB string of the audio.
 * For a 3 s clip (a 128 KB body) those strings were most of what the JSON path cost over a raw
 * WAV body: CPU, and 300 KB of young generation per request, more than twice what the prediction
 * itself allocates there, so collections twice as often (lib/serving/server.ts registers this as
 * the JSON parser).
 *
 * The fast path only answers a body for which it gives exactly what JSON.parse gives: any other
 * byte (another key, an escape, a BOM, a value of another type, a string that does not decode
 * whole) makes it return undefined, and the caller parses the body the ordinary way.
 */

/**
 * An audio string of a body the fast path read: its first characters (what the request checks
 * look at) and its base64 bytes, which are `Buffer.from(string, 'base64')` of the string
 * JSON.parse would have made. The whole string is never made.
 */
export class Base64Audio {
  constructor(
    /** The string's first `HEAD` characters (all of it when shorter). */
    readonly head: string,
    readonly bytes: Buffer,
  ) {}
}

/** How many leading characters `Base64Audio.head` keeps. */
export const HEAD = 64;

/**
 * Strings made from the body at a time while decoding: small enough to pack into the young
 * generation's pages (a single 128 KB string takes most of a 256 KB page to itself), a multiple
 * of 4 so each piece decodes on its own to the bytes the whole string decodes to.
 */
const PIECE = 16 * 1024;

const QUOTE = 0x22;
const INSTANCES = Buffer.from('"instances"');
const AUDIO = Buffer.from('"audio"');
const EQUALS = 0x3d;

/** JSON's four whitespace bytes. */
function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Reads `body` when it is exactly `{"instances": [{"audio": "<base64>"}, ...]}` (any JSON
 * whitespace between tokens), returning the object JSON.parse would return for it with each audio
 * string as a Base64Audio; undefined for any other body.
 */
export function readPlainAudioBody(body: Buffer): { instances: { audio: Base64Audio }[] } | undefined {
  const end = body.length;
  let i = 0;
  const skip = () => {
    while (i < end && isSpace(body[i]!)) i++;
  };
  const take = (c: number): boolean => {
    skip();
    if (body[i] !== c) return false;
    i++;
    return true;
  };
  const takeKey = (key: Buffer): boolean => {
    skip();
    if (i + key.length > end || body.compare(key, 0, key.length, i, i + key.length) !== 0) return false;
    i += key.length;
    return take(0x3a); // ':'
  };
  if (!take(0x7b) || !takeKey(INSTANCES) || !take(0x5b)) return undefined; // '{' "instances": '['
  const instances: { audio: Base64Audio }[] = [];
  for (;;) {
    if (!take(0x7b) || !takeKey(AUDIO) || !take(QUOTE)) return undefined; // '{' "audio": '"'
    const close = body.indexOf(QUOTE, i);
    if (close < 0) return undefined;
    const audio = decodeWhole(body, i, close);
    if (!audio) return undefined;
    i = close + 1;
    if (!take(0x7d)) return undefined; // '}'
    instances.push({ audio });
    if (!take(0x2c)) break; // ','
  }
  if (!take(0x5d) || !take(0x7d)) return undefined; // ']' '}'
  skip();
  return i === end ? { instances } : undefined;
}

/**
 * The string between `start` and `end` as a Base64Audio, when every character before the padding
 * decodes. Then the string holds only base64 characters, so it has no escape, no control
 * character and no multi-byte UTF-8 sequence: its bytes read as latin1 are the string JSON.parse
 * makes of them, and decoding it piece by piece gives what decoding it whole gives. A character
 * the decoder skips (it skips every byte outside the base64 alphabet and stops at an inner '=')
 * leaves the output shorter than the length of a string of base64 characters alone, which is how
 * such a string is told apart.
 */
function decodeWhole(body: Buffer, start: number, end: number): Base64Audio | undefined {
  const n = end - start;
  if (n % 4 !== 0) return undefined;
  let pad = 0;
  if (n > 0 && body[end - 1] === EQUALS) pad = body[end - 2] === EQUALS ? 2 : 1;
  const length = ((n - pad) * 3) >>> 2;
  const bytes = Buffer.allocUnsafe(length);
  let written = 0;
  for (let at = start; at < end; at += PIECE) {
    written += bytes.write(body.toString('latin1', at, Math.min(at + PIECE, end)), written, 'base64');
  }
  // With n a multiple of 4, one character fewer decoded is at least one byte fewer.
  if (written !== length) return undefined;
  return new Base64Audio(body.toString('latin1', start, Math.min(start + HEAD, end)), bytes);
}
