/**
 * The named objects of a gs:// remote (job specs, results, claims, log chunks) against the fake
 * GCS on 127.0.0.1: a read is one media request whose generation is the one a conditional write
 * then holds to, a missing object reads as undefined, and a 503 on a read is retried.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGcs } from '../support/fake-gcs.ts';
import { openNamedStore } from '../../lib/compute/named.ts';

let gcs: FakeGcs;
const saved = process.env.LOCKSTEP_GCS_ENDPOINT;

beforeAll(async () => {
  gcs = await FakeGcs.start();
  process.env.LOCKSTEP_GCS_ENDPOINT = gcs.url;
});
afterAll(async () => {
  if (saved === undefined) delete process.env.LOCKSTEP_GCS_ENDPOINT;
  else process.env.LOCKSTEP_GCS_ENDPOINT = saved;
  await gcs.close();
});

describe('named store on gs://', () => {
  it('reads in one request, with the generation a conditional write checks', async () => {
    const named = await openNamedStore('gs://named/prefix');
    expect(await named.write('jobs/k/job.json', '{"a":1}', { ifGeneration: '0' })).toBe(true);
    gcs.resetLog();
    const first = await named.read('jobs/k/job.json');
    expect(first?.text).toBe('{"a":1}');
    expect(gcs.requests.map((r) => r.kind)).toEqual(['download']);
    expect(await named.write('jobs/k/job.json', '{"a":2}', { ifGeneration: '0' })).toBe(false);
    expect(await named.write('jobs/k/job.json', '{"a":2}', { ifGeneration: first!.generation })).toBe(true);
    // The generation read first is spent: a second writer holding it loses.
    expect(await named.write('jobs/k/job.json', '{"a":3}', { ifGeneration: first!.generation })).toBe(false);
    expect((await named.read('jobs/k/job.json'))?.text).toBe('{"a":2}');
  });

  it('a missing object reads as undefined; a 503 on a read is retried', async () => {
    const named = await openNamedStore('gs://named/prefix');
    expect(await named.read('jobs/none/result.json')).toBeUndefined();
    await named.write('jobs/k/spec.json', 'spec\n');
    gcs.inject({ kind: 'download', nameIncludes: 'jobs/k/spec.json', status: 503, times: 2 });
    gcs.resetLog();
    expect((await named.read('jobs/k/spec.json'))?.text).toBe('spec\n');
    expect(gcs.requests.map((r) => r.status)).toEqual([503, 503, 200]);
  });

  it('a read answered without x-goog-generation fails in one line naming it, without the text', async () => {
    const named = await openNamedStore('gs://named/prefix');
    await named.write('jobs/g/job.json', '{"secret":"spec"}');
    gcs.inject({ kind: 'download', nameIncludes: 'jobs/g/job.json', noGeneration: true });
    gcs.resetLog();
    const err = await named.read('jobs/g/job.json').then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(
      /jobs\/g\/job\.json: the read answered without an x-goog-generation header\./,
    );
    expect(err?.message).not.toContain('secret');
    expect(err?.message).not.toContain('\n');
    // Not a transient answer: no retry.
    expect(gcs.requests.map((r) => r.kind)).toEqual(['download']);
  });
});
