/**
 * How often followed jobs are polled: against a local JobService on 127.0.0.1 that counts the
 * gets, answers RUNNING until a job is released, and refuses chosen gets with 429.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryOutput } from '../../lib/output.ts';
import { jobServiceClient, type JobServiceClient } from '../../lib/compute/jobs-client.ts';
import {
  followJob,
  ENDING_POLL_MS,
  ENDING_POLLS,
  FIRST_POLL_MS,
  THROTTLED_POLL_MS,
} from '../../lib/compute/job-follow.ts';

const PARENT = 'projects/p/locations/us-central1/customJobs';
/** Per job id: the times of its gets, whether it has ended, how many gets to refuse with 429. */
const jobs = new Map<string, { gets: number[]; done: boolean; refuse: number }>();
const waiters: (() => void)[] = [];
let server: http.Server;
let client: JobServiceClient;
const saved = { endpoint: process.env.LOCKSTEP_VERTEX_ENDPOINT, retry: process.env.LOCKSTEP_VERTEX_RETRY_MS };

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    const id = req.url!.split('?')[0]!.split('/').pop()!;
    const j = jobs.get(id);
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    if (!j) return send(404, { error: { code: 404, status: 'NOT_FOUND', message: id } });
    if (j.refuse > 0) {
      j.refuse--;
      return send(429, { error: { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'quota' } });
    }
    j.gets.push(Date.now());
    for (const w of waiters.splice(0)) w();
    send(200, {
      name: `${PARENT}/${id}`,
      state: j.done ? 'JOB_STATE_SUCCEEDED' : 'JOB_STATE_RUNNING',
      createTime: '2026-01-01T00:00:00Z',
      startTime: new Date().toISOString(),
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.env.LOCKSTEP_VERTEX_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.LOCKSTEP_VERTEX_RETRY_MS = '20';
  client = jobServiceClient('us-central1');
});
afterAll(async () => {
  for (const [k, v] of [
    ['LOCKSTEP_VERTEX_ENDPOINT', saved.endpoint],
    ['LOCKSTEP_VERTEX_RETRY_MS', saved.retry],
  ] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await client?.close();
  await new Promise((r) => server.close(r));
});

/** Resolves once `test` holds after some get. */
async function until(test: () => boolean): Promise<void> {
  while (!test()) await new Promise<void>((r) => waiters.push(r));
}

function follow(id: string, ending?: () => boolean) {
  return followJob(
    client,
    { name: `${PARENT}/${id}` },
    {
      label: id,
      timeoutSeconds: 3600,
      pollMs: 10_000,
      owned: false,
      signal: new AbortController().signal,
      out: memoryOutput(),
      ...(ending ? { ending } : {}),
    },
  );
}

describe('followJob polling', () => {
  it('jobs followed at once share the brisk rate instead of each polling 4 times a second', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `many${i}`);
    for (const id of ids) jobs.set(id, { gets: [], done: false, refuse: 0 });
    const all = () => ids.flatMap((id) => jobs.get(id)!.gets).sort((a, b) => a - b);
    const followed = ids.map((id) => follow(id));
    // Every job's first poll, then 8 more polls in all.
    await until(() => all().length >= ids.length + 8);
    const gets = all();
    for (const id of ids) jobs.get(id)!.done = true;
    await Promise.all(followed);
    const later = gets.slice(ids.length - 1, ids.length + 8);
    const perSecond = ((later.length - 1) * 1000) / (later.at(-1)! - later[0]!);
    // 8 jobs at 250 ms each would be 32 a second; shared, it is about 1000 / FIRST_POLL_MS.
    expect(perSecond).toBeLessThan((2 * 1000) / FIRST_POLL_MS);
  }, 30_000);

  it('a 429 on a poll ends the brisk polls of that job', async () => {
    const j = { gets: [] as number[], done: false, refuse: 0 };
    jobs.set('quota', j);
    const followed = follow('quota');
    await until(() => j.gets.length >= 2);
    j.refuse = 2; // the next poll is refused twice, then retried to success
    await until(() => j.gets.length >= 4);
    j.done = true;
    await followed;
    expect(j.gets[1]! - j.gets[0]!).toBeLessThan(THROTTLED_POLL_MS);
    // After the refused poll, the next waits at least THROTTLED_POLL_MS (less timer slack).
    expect(j.gets[3]! - j.gets[2]!).toBeGreaterThanOrEqual(THROTTLED_POLL_MS - 20);
  }, 30_000);

  it('once the outputs are written, the next polls come quicker, for a bounded count', async () => {
    const j = { gets: [] as number[], done: false, refuse: 0 };
    jobs.set('ending', j);
    let written = false;
    const followed = follow('ending', () => written);
    await until(() => j.gets.length >= 2);
    written = true;
    const from = j.gets.length;
    await until(() => j.gets.length >= from + ENDING_POLLS + 2);
    j.done = true;
    await followed;
    const gaps = j.gets.slice(1).map((t, i) => t - j.gets[i]!);
    // Before: the brisk rate. Then ENDING_POLLS quick ones (timer slack aside), then brisk again.
    expect(gaps[0]!).toBeGreaterThanOrEqual(FIRST_POLL_MS - 20);
    const quick = gaps.slice(from, from + ENDING_POLLS - 1);
    expect(Math.max(...quick)).toBeLessThan(FIRST_POLL_MS - 50);
    expect(quick.reduce((a, b) => a + b, 0) / quick.length).toBeGreaterThanOrEqual(ENDING_POLL_MS - 20);
    expect(gaps[from + ENDING_POLLS]!).toBeGreaterThanOrEqual(FIRST_POLL_MS - 20);
  }, 30_000);
});
