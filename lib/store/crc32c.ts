/**
 * CRC32C (Castagnoli), the checksum GCS keeps for every object, computed eight bytes at a time
 * (slicing-by-8). `@google-cloud/storage`'s own CRC32C walks one byte per loop turn at about
 * 70 MB/s here, which made hashing a stage's inputs and outputs for upload and download a large
 * part of a Vertex AI job's own cost (hundreds of ms for the demo corpus, in the repro and in the
 * job alike); this one runs at about 700 MB/s and gives the same values (test/store/crc32c.test.ts
 * compares them).
 */

const POLY = 0x82f63b78; // reversed Castagnoli polynomial

/** TABLE[k * 256 + b]: the CRC of byte b followed by k zero bytes. */
const TABLE = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + n]!;
      t[k * 256 + n] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
})();

/** A running CRC32C over the bytes passed to `update`. */
export class Crc32c {
  private crc = 0;

  update(data: Uint8Array): this {
    const t = TABLE;
    let c = ~this.crc;
    const n = data.length;
    const end = n - (n % 8);
    let i = 0;
    for (; i < end; i += 8) {
      const a = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ c;
      c =
        t[1792 + (a & 0xff)]! ^
        t[1536 + ((a >>> 8) & 0xff)]! ^
        t[1280 + ((a >>> 16) & 0xff)]! ^
        t[1024 + (a >>> 24)]! ^
        t[768 + data[i + 4]!]! ^
        t[512 + data[i + 5]!]! ^
        t[256 + data[i + 6]!]! ^
        t[data[i + 7]!]!;
    }
    for (; i < n; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
    this.crc = ~c;
    return this;
  }

  /** The value as an unsigned 32-bit integer. */
  value(): number {
    return this.crc >>> 0;
  }

  /** The value as GCS reports it (`crc32c` of an object, `x-goog-hash`): big-endian, base64. */
  toString(): string {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(this.crc >>> 0);
    return b.toString('base64');
  }
}

/** The GCS form (base64, big-endian) of the CRC32C of `data`. */
export function crc32cBase64(data: Uint8Array): string {
  return new Crc32c().update(data).toString();
}
