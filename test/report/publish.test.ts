/**
 * Plot PNGs published to a GCS remote (the fake on 127.0.0.1) under their content address, with
 * V4 signed URLs: the link reads the bytes, a tampered or expired link is refused, and a second
 * publish of the same bytes uploads nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GcsRemote } from '../../lib/store/gcs-remote.ts';
import { isSigningRemote, publishPlots } from '../../lib/report/publish.ts';
import { openRemote } from '../../lib/store/open-remote.ts';
import { FakeGcs } from '../support/fake-gcs.ts';

let gcs: FakeGcs;
let dir: string;
const EMAIL = 'plots@p.iam.gserviceaccount.com';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

beforeAll(async () => {
  gcs = await FakeGcs.start();
  gcs.signers.set(EMAIL, publicKey);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'publish-'));
  fs.writeFileSync(path.join(dir, 'confusion.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
  fs.writeFileSync(path.join(dir, 'per_class_f1.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 4, 5]));
});
afterAll(async () => {
  await gcs?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const remote = () =>
  new GcsRemote('gs://plots-bucket/cache', {
    apiEndpoint: gcs.url,
    projectId: 'p',
    sessionDir: false,
    credentials: {
      client_email: EMAIL,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    },
  });

describe('publish plots', () => {
  it('publish plots uploads by content hash and links with signed URLs whose expiry cannot be stretched', async () => {
    const files = ['confusion.png', 'per_class_f1.png'].map((f) => path.join(dir, f));
    const links = await publishPlots(remote(), files, { expiresInSeconds: 600 });
    expect(links.map((l) => l.name)).toEqual(['confusion.png', 'per_class_f1.png']);
    const uploads = gcs.requests.filter((r) => r.kind === 'upload' || r.kind === 'upload-init');
    expect(uploads).toHaveLength(2);
    for (const [i, link] of links.entries()) {
      expect(link.url).toMatch(
        /\/plots-bucket\/cache\/sha256\/[0-9a-f]{2}\/[0-9a-f]{62}\?X-Goog-Algorithm=GOOG4-RSA-SHA256/,
      );
      expect(link.url).toContain('X-Goog-Expires=600');
      const res = await fetch(link.url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await res.arrayBuffer())).toEqual(fs.readFileSync(files[i]!));
    }
    // A link for another object, or with the expiry stretched, does not verify.
    const forged = links[0]!.url.replace('X-Goog-Expires=600', 'X-Goog-Expires=604800');
    expect((await fetch(forged)).status).toBe(403);
    // Without a signature the object is not readable at all (private bucket).
    expect((await fetch(links[0]!.url.split('?')[0]!)).status).toBe(404);

    // Same bytes again: nothing uploaded, fresh links.
    const before = gcs.requests.length;
    await publishPlots(remote(), files, { expiresInSeconds: 600 });
    expect(gcs.requests.slice(before).filter((r) => r.kind.startsWith('upload'))).toEqual([]);
  });

  it('publish plots: a local directory remote cannot sign, so nothing is published', async () => {
    const local = await openRemote(dir);
    expect(isSigningRemote(local)).toBe(false);
    expect(isSigningRemote(remote())).toBe(true);
  });
});
