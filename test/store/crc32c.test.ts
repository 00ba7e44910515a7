import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { CRC32C } from '@google-cloud/storage';
import { Crc32c, crc32cBase64 } from '../../lib/store/crc32c.ts';

function library(data: Buffer): string {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
}

describe('crc32c', () => {
  it('gives the check value of the Castagnoli CRC (RFC 3720) and of the empty input', () => {
    expect(new Crc32c().update(Buffer.from('123456789')).value()).toBe(0xe3069283);
    expect(crc32cBase64(Buffer.alloc(0))).toBe(library(Buffer.alloc(0)));
    // 32 zero bytes: the iSCSI test vector (RFC 3720 B.4)
    expect(new Crc32c().update(Buffer.alloc(32)).value()).toBe(0x8a9136aa);
    expect(new Crc32c().update(Buffer.alloc(32, 0xff)).value()).toBe(0x62a8ab43);
  });

  it("equals @google-cloud/storage's CRC32C on every length around the 8-byte stride", () => {
    const data = randomBytes(300);
    for (let n = 0; n <= data.length; n++) {
      const part = data.subarray(0, n);
      expect(crc32cBase64(part), `length ${n}`).toBe(library(part));
    }
  });

  it('gives the same value fed in chunks of any size as in one piece', () => {
    const data = randomBytes(1 << 16);
    const whole = library(data);
    for (const size of [1, 3, 7, 8, 13, 4096, 65535]) {
      const crc = new Crc32c();
      for (let i = 0; i < data.length; i += size) crc.update(data.subarray(i, i + size));
      expect(crc.toString(), `chunks of ${size}`).toBe(whole);
    }
  });

  it('reads a Uint8Array view at its own offset', () => {
    const data = randomBytes(1000);
    const view = new Uint8Array(data.buffer, data.byteOffset + 5, 900);
    expect(crc32cBase64(view)).toBe(library(data.subarray(5, 905)));
  });
});
