import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { OAuth2Client } from 'google-auth-library';
import { ConfigError, LockstepError, toOneLine } from '../../lib/errors.ts';
import { GcsRemote } from '../../lib/store/gcs-remote.ts';
import { parseGsUrl, redactSecrets, toGcsError } from '../../lib/store/gcs-errors.ts';
import { randomBlob, remoteOn, writeBlob, useGcsFixture } from './gcs-helpers.ts';

const TOKEN = 'ya29.SECRET-token-0123456789';

const fx = useGcsFixture();

function tokenClient(): OAuth2Client {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: TOKEN, expiry_date: Date.now() + 3_600_000 });
  return client;
}

/** Everything a user could see of an error: message, one-line form, cause chain, JSON. */
function visible(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    parts.push(String(e), toOneLine(e), JSON.stringify(e));
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join('\n');
}

describe('GcsRemote credentials', () => {
  it('GcsRemote sends no credentials to a custom endpoint by default', async () => {
    const remote = remoteOn(fx.fake);
    const { file, oid } = writeBlob(fx.dir, randomBlob(100));
    await remote.put(oid, file);
    await remote.has([oid]);
    await remote.get(oid, path.join(fx.dir, 'out'));
    expect(fx.fake.count()).toBeGreaterThanOrEqual(3);
    expect(fx.fake.requests.every((r) => r.authorization === undefined)).toBe(true);
  });

  it('GcsRemote authenticates with the given client yet never shows its token in errors', async () => {
    const remote = remoteOn(fx.fake, {
      authClient: tokenClient(),
      useAuthWithCustomEndpoint: true,
      maxRetries: 0,
    });
    const { file, oid } = writeBlob(fx.dir, randomBlob(100));
    await remote.put(oid, file);
    expect(fx.fake.requests[0].authorization).toBe(`Bearer ${TOKEN}`);
    // A server (or proxy) that echoes the credential back in its error body.
    const echo = `caller Bearer ${TOKEN} lacks storage.objects.create; access_token=${TOKEN}`;
    fx.fake.inject({ kind: 'upload', status: 403, message: echo });
    fx.fake.inject({ kind: 'download', status: 403, message: echo });
    fx.fake.inject({ kind: 'list', status: 403, message: echo });
    const other = writeBlob(fx.dir, randomBlob(101));
    const errors = [
      await remote.put(other.oid, other.file).catch((e: unknown) => e),
      await remote.get(oid, path.join(fx.dir, 'out')).catch((e: unknown) => e),
      await remote
        .has(Array.from({ length: 40 }, (_, i) => i.toString(16).padStart(64, '0')))
        .catch((e: unknown) => e),
    ];
    for (const err of errors) {
      expect(err).toBeInstanceOf(LockstepError);
      expect((err as Error).message).toMatch(
        /HTTP 403 "caller Bearer <redacted> lacks .*Application Default Credentials/,
      );
      expect(visible(err)).not.toContain('SECRET');
    }
    expect(remote.url).toBe('gs://test-bucket/team/store');
  });

  it.each([
    ['gs://user:ya29.SECRET@bucket/prefix'],
    ['gs://bucket/prefix?access_token=ya29.SECRET'],
    ['gs://bucket/prefix#ya29.SECRET'],
    ['https://storage.googleapis.com/bucket?token=ya29.SECRET'],
  ])('parseGsUrl refuses %s without echoing the secret', (url) => {
    let err: unknown;
    try {
      new GcsRemote(url);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^remote: /);
    expect(visible(err)).not.toContain('SECRET');
  });

  it.each([
    ['gs://my-bucket', 'my-bucket', ''],
    ['gs://my-bucket/', 'my-bucket', ''],
    ['gs://my-bucket/a/b/', 'my-bucket', 'a/b'],
    ['gs://my-bucket//a//b', 'my-bucket', 'a/b'],
  ])('parseGsUrl reads %s', (url, bucket, prefix) => {
    const loc = parseGsUrl(url);
    expect(loc).toEqual({ bucket, prefix, url: prefix ? `gs://${bucket}/${prefix}` : `gs://${bucket}` });
  });

  it('parseGsUrl rejects an invalid bucket name with a fix', () => {
    expect(() => parseGsUrl('gs://Bad_Bucket!/x', 'promotion/prod.yaml: remote')).toThrow(
      /^promotion\/prod\.yaml: remote: invalid bucket name "Bad_Bucket!"\. Use 3-63/,
    );
  });

  it('redactSecrets scrubs bearer tokens, signed URL parameters and key material', () => {
    const text = `Bearer abc.def ya29.xyz https://h/o?X-Goog-Signature=abcd&upload_id=u1 {"private_key":"-----BEGIN PRIVATE KEY-----\\nMII\\n-----END PRIVATE KEY-----"}`;
    const clean = redactSecrets(text);
    for (const secret of ['abc.def', 'ya29.xyz', 'abcd', 'u1', 'MII']) expect(clean).not.toContain(secret);
  });
});

describe('toGcsError', () => {
  it.each([
    [
      Object.assign(new Error('Could not load the default credentials. Browse to https://x'), {}),
      /Application Default Credentials/,
    ],
    [Object.assign(new Error('boom'), { code: 500 }), /HTTP 500 "boom"\. The service kept failing/],
    [
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      /"socket hang up"\. The service kept failing/,
    ],
    [Object.assign(new Error('bad'), { code: 400 }), /HTTP 400 "bad"\. Check the remote URL/],
  ])('toGcsError explains %s with a fix', (err, expected) => {
    const out = toGcsError(err, 'gs://b/p', 'upload');
    expect(out.message).toMatch(/^gs:\/\/b\/p: upload failed/);
    expect(out.message).toMatch(expected);
  });
});
