/**
 * Batch prediction against Cloud Storage: the real @google-cloud/storage client talking to a
 * local JSON API server. gs:// input, gs:// output and the mixes with local folders; a crash
 * after a chunk's part object is durable; an upload outage that must not lose or move inputs;
 * and the CLI with STORAGE_EMULATOR_HOST.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { batchPredict, parseJsonLines, readJsonLines, type BatchResult } from '../../stages/batch/index.ts';
import { loadModelDir, type LoadedModel } from '../../lib/ml/model.ts';
import { commitArtifact } from '../../lib/store/artifacts.ts';
import { writeLockfile } from '../../lib/lockfile.ts';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { makeTinyCorpus } from '../support/corpus.ts';
import { makeAudioModel } from '../support/audio-model.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

let tmp: string;
let corpusDir: string;
let corpus: string[];
let model: LoadedModel;
let fake: FakeGcs;
const HASH = 'm'.repeat(64);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-batch-gcs-'));
  corpusDir = path.join(tmp, 'corpus');
  corpus = await makeTinyCorpus(corpusDir, { speakers: 2, words: 1 });
  await makeAudioModel(path.join(tmp, 'model'), corpus, { epochs: 5 });
  model = await loadModelDir(path.join(tmp, 'model'));
  fake = await FakeGcs.start();
}, 120_000);

afterAll(async () => {
  await fake?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  fake.reset();
  fake.clearFaults();
});

const rels = (): string[] => corpus.map((f) => path.relative(corpusDir, f).split(path.sep).join('/'));
const storage = () => ({ apiEndpoint: fake.url, projectId: 'p' });

/** Uploads the corpus plus two bad files under gs://emo-in/<prefix>/. */
function seedBucket(prefix: string): string[] {
  const names = rels();
  for (const rel of names)
    fake.putObject('emo-in', `${prefix}/${rel}`, fs.readFileSync(path.join(corpusDir, rel)));
  fake.putObject('emo-in', `${prefix}/notes.wav`, Buffer.from('this is a text file named .wav'));
  fake.putObject('emo-in', `${prefix}/empty.wav`, Buffer.alloc(0));
  return [...names, 'notes.wav', 'empty.wav'];
}

const text = (bucket: string, name: string): string => {
  const o = fake.object(bucket, name);
  if (!o) throw new Error(`no object gs://${bucket}/${name}`);
  return o.data.toString('utf8');
};
const under = (bucket: string, prefix: string): string[] =>
  fake
    .names(bucket)
    .filter((n) => n.startsWith(prefix + '/'))
    .map((n) => n.slice(prefix.length + 1));

describe('batch-predict with gs://', () => {
  it('gs:// in and out: every file predicted, bad files listed, inputs moved only after results, parts merged', async () => {
    const all = seedBucket('incoming');
    const s = await batchPredict({
      input: 'gs://emo-in/incoming',
      output: 'gs://emo-out/batch/run1',
      model,
      modelHash: HASH,
      chunk: 5,
      workers: 2,
      storage: storage(),
    });
    expect(s.predicted).toBe(corpus.length);
    expect(s.failed).toBe(2);
    expect(s.results).toBe('gs://emo-out/batch/run1/results.jsonl');
    const results = parseJsonLines<BatchResult>(text('emo-out', 'batch/run1/results.jsonl'));
    expect(results.map((r) => r.file).sort()).toEqual(rels().sort());
    // Same content hash and the same label a local run gives.
    for (const r of results) {
      expect(r.sha256).toBe(
        createHash('sha256')
          .update(fs.readFileSync(path.join(corpusDir, r.file)))
          .digest('hex'),
      );
      expect(model.labels).toContain(r.label);
    }
    const errors = parseJsonLines<{ file: string; reason: string }>(
      text('emo-out', 'batch/run1/errors.jsonl'),
    );
    expect(errors.map((e) => e.file).sort()).toEqual(['empty.wav', 'notes.wav']);
    expect(text('emo-out', 'batch/run1/results.csv').trim().split('\n')).toHaveLength(corpus.length + 1);
    // Inputs left the input prefix and are kept under processed/ and failed/; no parts remain.
    expect(under('emo-in', 'incoming')).toEqual([]);
    const out = under('emo-out', 'batch/run1');
    expect(
      out.filter((n) => n.startsWith('processed/')).length +
        out.filter((n) => n.startsWith('failed/')).length,
    ).toBe(all.length);
    expect(out).toContain('failed/notes.wav');
    expect(out.filter((n) => n.startsWith('parts/'))).toEqual([]);
    // No staging left behind locally.
    expect(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('lockstep-batch-in-'))).toEqual([]);
  });

  it('a crash after a durable part resumes: nothing lost, nothing predicted twice, a third run does nothing', async () => {
    seedBucket('crash');
    const opts = {
      input: 'gs://emo-in/crash',
      output: 'gs://emo-out/crash',
      model,
      modelHash: HASH,
      chunk: 4,
      workers: 1,
      storage: storage(),
    };
    let chunks = 0;
    await expect(
      batchPredict({
        ...opts,
        afterDurable: () => {
          if (++chunks === 2) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow(/simulated crash/);
    // The first chunk moved; the second chunk's results are durable as a part but its inputs stayed.
    expect(under('emo-out', 'crash').filter((n) => n.startsWith('parts/results-'))).toHaveLength(2);
    expect(under('emo-in', 'crash')).toHaveLength(corpus.length + 2 - 4);
    const s = await batchPredict(opts);
    expect(s.resumed).toBe(4);
    expect(s.predicted + s.failed).toBe(corpus.length + 2 - 8);
    const results = parseJsonLines<BatchResult>(text('emo-out', 'crash/results.jsonl'));
    expect(results).toHaveLength(corpus.length);
    expect(new Set(results.map((r) => r.file)).size).toBe(corpus.length);
    expect(under('emo-in', 'crash')).toEqual([]);
    const again = await batchPredict(opts);
    expect(again.predicted + again.resumed + again.failed).toBe(0);
    expect(parseJsonLines(text('emo-out', 'crash/results.jsonl'))).toHaveLength(corpus.length);
  });

  it('an output outage fails with one line naming the object and moves no input; the re-run completes', async () => {
    const all = seedBucket('outage');
    fake.inject({ kind: 'upload', nameIncludes: 'parts/', status: 403, times: Infinity, message: 'denied' });
    const opts = {
      input: 'gs://emo-in/outage',
      output: 'gs://emo-out/outage',
      model,
      modelHash: HASH,
      chunk: 4,
      workers: 1,
      storage: storage(),
    };
    const err = await batchPredict(opts).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/gs:\/\/emo-out\/outage\/parts\/results-[^ ]+\.jsonl/);
    expect(err?.message.split('\n')).toHaveLength(1);
    expect(under('emo-in', 'outage').sort()).toEqual(all.sort());
    fake.clearFaults();
    const s = await batchPredict(opts);
    expect(s.predicted).toBe(corpus.length);
    expect(under('emo-in', 'outage')).toEqual([]);
  });

  it('mixes: gs:// input into a local folder, and a local folder into gs:// with --remove', async () => {
    seedBucket('mixed');
    const local = path.join(tmp, 'mixed-out');
    const a = await batchPredict({
      input: 'gs://emo-in/mixed',
      output: local,
      model,
      modelHash: HASH,
      storage: storage(),
    });
    expect(a.predicted).toBe(corpus.length);
    expect(readJsonLines<BatchResult>(a.results)).toHaveLength(corpus.length);
    expect(fs.existsSync(path.join(local, 'failed', 'notes.wav'))).toBe(true);
    expect(under('emo-in', 'mixed')).toEqual([]);

    const input = path.join(tmp, 'mixed-in');
    fs.cpSync(corpusDir, input, { recursive: true });
    const b = await batchPredict({
      input,
      output: 'gs://emo-out/from-local',
      model,
      modelHash: HASH,
      onDone: 'remove',
      storage: storage(),
    });
    expect(b.predicted).toBe(corpus.length);
    expect(parseJsonLines(text('emo-out', 'from-local/results.jsonl'))).toHaveLength(corpus.length);
    expect(under('emo-out', 'from-local').filter((n) => n.startsWith('processed/'))).toEqual([]);
    expect(fs.readdirSync(input, { recursive: true }).filter((n) => n.toString().endsWith('.wav'))).toEqual(
      [],
    );
  });

  it('refuses an output prefix inside the input prefix, and a malformed URL, in one line', async () => {
    await expect(
      batchPredict({
        input: 'gs://emo-in/x',
        output: 'gs://emo-in/x/out',
        model,
        modelHash: HASH,
        storage: storage(),
      }),
    ).rejects.toThrow(/^--output gs:\/\/emo-in\/x\/out: inside --input/);
    await expect(
      batchPredict({ input: 'gs://Bad_Bucket!/x', output: path.join(tmp, 'o'), model, modelHash: HASH }),
    ).rejects.toThrow(/^--input: /);
  });
});

describe('lockstep batch-predict (CLI) with gs://', () => {
  let t: TmpRepo;
  beforeAll(async () => {
    t = await createTmpRepo({});
    fs.cpSync(path.join(tmp, 'model'), path.join(t.root, 'out/model'), { recursive: true });
    const ref = await commitArtifact(t.repo, 'out/model');
    await writeLockfile(t.repo, {
      schema: 1,
      data: {},
      stages: { train: { code: 'c'.repeat(64), deps: [], params: {}, outs: [ref] } },
    });
  });
  afterAll(() => t?.cleanup());

  it('reads gs:// input and writes gs:// output through STORAGE_EMULATOR_HOST', async () => {
    seedBucket('cli');
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = fake.url;
    try {
      const out = memoryOutput();
      const code = await main(
        [
          '-C',
          t.root,
          'batch-predict',
          '--env',
          'dev',
          '--input',
          'gs://emo-in/cli',
          '--output',
          'gs://emo-out/cli',
          '--json',
        ],
        out,
      );
      expect(code, out.stderr.join('\n')).toBe(0);
      const summary = JSON.parse(out.stdout.join('\n')) as {
        predicted: number;
        failed: number;
        results: string;
      };
      expect(summary).toMatchObject({
        predicted: corpus.length,
        failed: 2,
        results: 'gs://emo-out/cli/results.jsonl',
      });
      expect(parseJsonLines(text('emo-out', 'cli/results.jsonl'))).toHaveLength(corpus.length);
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
    }
  });
});
