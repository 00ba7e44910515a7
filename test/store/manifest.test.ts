import { describe, expect, it } from 'vitest';
import { decodeManifest, encodeManifest, sha256Hex } from '../../lib/store/manifest.ts';
import { IntegrityError } from '../../lib/errors.ts';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('manifest', () => {
  it('manifest encoding is canonical: sorted by path in code-unit order, fixed key order', () => {
    const one = encodeManifest([
      { size: 2, sha256: B, path: 'c/x' },
      { path: 'B', sha256: A, size: 1 },
      { path: 'a', sha256: A, size: 1 },
    ]);
    const two = encodeManifest([
      { path: 'a', sha256: A, size: 1 },
      { path: 'c/x', sha256: B, size: 2 },
      { path: 'B', sha256: A, size: 1 },
    ]);
    expect(one.equals(two)).toBe(true);
    expect(one.toString()).toBe(
      `{"entries":[{"path":"B","sha256":"${A}","size":1},{"path":"a","sha256":"${A}","size":1},{"path":"c/x","sha256":"${B}","size":2}]}`,
    );
  });

  it('manifest round-trips through decode and rejects non-manifests', () => {
    const bytes = encodeManifest([{ path: 'x', sha256: A, size: 3 }]);
    expect(decodeManifest(bytes, sha256Hex(bytes)).entries).toEqual([{ path: 'x', sha256: A, size: 3 }]);
    expect(() => decodeManifest(Buffer.from('plain file'), A)).toThrow(IntegrityError);
    expect(() => decodeManifest(Buffer.from('{"entries":[{"path":"x"}]}'), A)).toThrow(IntegrityError);
  });
});
