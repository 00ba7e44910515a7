/**
 * Seeded fuzz of WAV headers against the server and `batch-predict`, with a real model (so the
 * featurize and resample path runs): no 5xx, no request slower than a bound, the server healthy
 * afterwards, and every out-of-range header a 400 naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { startServer } from '../../lib/serving/server.ts';
import { staticSource } from '../../lib/serving/router.ts';
import { loadServingModel } from '../../lib/serving/model.ts';
import { loadModelDir } from '../../lib/ml/model.ts';
import { batchPredict, readJsonLines } from '../../stages/batch/index.ts';
import { makeTinyCorpus } from '../support/corpus.ts';
import { makeAudioModel } from '../support/audio-model.ts';
import { demoClip, hostileWavs } from '../support/hostile-wav.ts';

/** Slowest accepted answer to one hostile request (generous: the machine is shared). */
const BOUND_MS = 3000;

let tmp: string;
let modelDir: string;
let app: FastifyInstance;
let url: string;
const corpus = hostileWavs();

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-hostile-wav-'));
  const files = await makeTinyCorpus(path.join(tmp, 'corpus'), { speakers: 2, words: 1 });
  modelDir = path.join(tmp, 'model');
  await makeAudioModel(modelDir, files, { epochs: 2 });
  const model = await loadServingModel(modelDir);
  const started = await startServer({
    env: 'test',
    port: 0,
    source: staticSource([{ deployedModelId: '1', modelVersionId: model.id, model, percent: 100 }]),
  });
  app = started.app;
  url = started.url;
}, 120_000);

afterAll(async () => {
  await app?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function predict(bytes: Buffer): Promise<{ status: number; body: { error?: string } }> {
  const res = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [{ audio: bytes.toString('base64') }] }),
  });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

describe('hostile WAV headers', () => {
  it(`hostile WAV headers: ${corpus.length} seeded cases get no 5xx, each answer within ${BOUND_MS} ms, and the server stays healthy`, async () => {
    expect(corpus.length).toBeGreaterThan(250);
    const slow: string[] = [];
    const statuses = new Map<number, number>();
    for (const c of corpus) {
      const started = performance.now();
      const res = await predict(c.bytes);
      const ms = performance.now() - started;
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      expect(res.status, `${c.name}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
      if (ms > BOUND_MS) slow.push(`${c.name} (${Math.round(ms)} ms)`);
    }
    expect(slow).toEqual([]);
    // Both outcomes occur: the corpus holds valid files and refused ones.
    expect(statuses.get(200)).toBeGreaterThan(5);
    expect(statuses.get(400)).toBeGreaterThan(100);
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect((await predict(demoClip())).status).toBe(200);
  }, 120_000);

  it.each([
    ['sampleRate=1828732544', /sampleRate out of range "1828732544"/],
    ['sampleRate=4294967295 (consistent byteRate)', /sampleRate out of range "4294967295"/],
    ['numChannels=65535', /numChannels out of range "65535"/],
    ['bitsPerSample=12', /bitsPerSample out of range "12"/],
    ['blockAlign=255', /blockAlign out of range "255"/],
    ['byteRate=0', /byteRate out of range "0"/],
    ['dataSize=4294967295', /data size out of range "4294967295"/],
    ['riffSize=2147483647', /RIFF size out of range "2147483647"/],
  ])('hostile WAV headers: %s is a 400 naming the field', async (name, message) => {
    const c = corpus.find((x) => x.name === name)!;
    const res = await predict(c.bytes);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(message);
  });

  it('hostile WAV headers: the same corpus through batch-predict lists each refused file and finishes in bounded time', async () => {
    const input = path.join(tmp, 'batch-in');
    fs.mkdirSync(input);
    corpus.forEach((c, i) =>
      fs.writeFileSync(path.join(input, `case${String(i).padStart(3, '0')}.wav`), c.bytes),
    );
    const model = await loadModelDir(modelDir);
    const started = performance.now();
    const s = await batchPredict({
      input,
      output: path.join(tmp, 'batch-out'),
      model,
      modelHash: 'm'.repeat(64),
      chunk: 64,
      workers: 2,
    });
    const seconds = (performance.now() - started) / 1000;
    expect(s.predicted + s.failed).toBe(corpus.length);
    expect(s.predicted).toBeGreaterThan(5);
    const errors = readJsonLines<{ file: string; reason: string }>(s.errors);
    expect(errors).toHaveLength(s.failed);
    const rate = corpus.findIndex((c) => c.name === 'sampleRate=1828732544');
    expect(errors.find((e) => e.file === `case${String(rate).padStart(3, '0')}.wav`)?.reason).toMatch(
      /sampleRate out of range/,
    );
    expect(seconds).toBeLessThan(corpus.length * (BOUND_MS / 1000) * 0.1);
  }, 120_000);
});
