/**
 * `lockstep batch-predict --compute vertex` against the fakes: the real JobServiceClient and
 * ModelServiceClient (REST fallback) talk to a fake Vertex AI whose BatchPredictionJob starts
 * the real `lockstep serve` container as a child process with the Vertex AI container variables,
 * posts batches of instances to its predict route and writes the prediction files to a fake GCS.
 * The results equal the local batch's on the same inputs; a re-run creates no second job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseJsonLines, type BatchResult } from '../../stages/batch/index.ts';
import { commitArtifact } from '../../lib/store/artifacts.ts';
import { writeLockfile } from '../../lib/lockfile.ts';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { VertexEndpoint } from '../../lib/endpoints/vertex.ts';
import { makeTinyCorpus } from '../support/corpus.ts';
import { makeAudioModel } from '../support/audio-model.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { FakeVertex } from '../support/fake-vertex.ts';
import { FakeBatchJobs } from '../support/fake-vertex-jobs.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

const PROJECT = path.resolve(import.meta.dirname, '../..');
const IMAGE = 'us-docker.pkg.dev/p/r/lockstep@sha256:' + 'c'.repeat(64);
const POLICY = `branch: main
endpoint:
  kind: vertex
  project: p
  region: us-central1
  endpoint: '1'
  model: emo
  image: ${IMAGE}
gate:
  thresholds:
    - { metric: f1_macro, direction: higher, min: 0, tolerance: 1 }
`;

let tmp: string;
let corpusDir: string;
let corpus: string[];
let gcs: FakeGcs;
let vertex: FakeVertex;
let batch: FakeBatchJobs;
let t: TmpRepo;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-batch-vertex-'));
  corpusDir = path.join(tmp, 'corpus');
  corpus = await makeTinyCorpus(corpusDir, { speakers: 2, words: 1 });
  gcs = await FakeGcs.start();
  vertex = await new FakeVertex().start();
  batch = new FakeBatchJobs(vertex, {
    images: { [IMAGE]: PROJECT },
    storage: gcs,
    env: { STORAGE_EMULATOR_HOST: gcs.url },
  });
  const env = {
    STORAGE_EMULATOR_HOST: gcs.url,
    LOCKSTEP_VERTEX_ENDPOINT: `http://127.0.0.1:${vertex.port}`,
    LOCKSTEP_VERTEX_POLL_MS: '100',
    LOCKSTEP_VERTEX_RETRY_MS: '20',
  };
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  t = await createTmpRepo({ 'promotion/prod.yaml': POLICY });
  await makeAudioModel(path.join(t.root, 'out/model'), corpus, { epochs: 5 });
  const ref = await commitArtifact(t.repo, 'out/model');
  await writeLockfile(t.repo, {
    schema: 1,
    data: {},
    stages: { train: { code: 'c'.repeat(64), deps: [], params: {}, outs: [ref] } },
  });
  execFileSync('git', ['add', 'artifacts.lock.yaml', 'promotion'], { cwd: t.root });
  execFileSync('git', ['commit', '-qm', 'pin the model'], { cwd: t.root });
  // The environment's model version, uploaded as a promotion does (the real client).
  const endpoint = new VertexEndpoint(
    {
      kind: 'vertex',
      project: 'p',
      region: 'us-central1',
      endpoint: '1',
      model: 'emo',
      image: IMAGE,
    } as never,
    {
      clientOptions: vertex.clientOptions(),
      stageModel: async (m) => {
        const dir = path.join(t.root, 'out/model');
        for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
          const abs = path.join(dir, f);
          if (fs.statSync(abs).isFile()) gcs.putObject('models', `emo/${m.hash}/${f}`, fs.readFileSync(abs));
        }
        return `gs://models/emo/${m.hash}`;
      },
    },
  );
  await endpoint.ensureModelVersion({ ...ref, dir: true } as never);
  await endpoint.close();
  seed('local');
  seed('remote');
}, 180_000);

afterAll(async () => {
  await batch?.idle();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await vertex?.close();
  await gcs?.close();
  t?.cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function seed(prefix: string): void {
  for (const f of corpus) {
    const rel = path.relative(corpusDir, f).split(path.sep).join('/');
    gcs.putObject('emo-in', `${prefix}/${rel}`, fs.readFileSync(f));
  }
}

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', t.root, 'batch-predict', '--env', 'prod', '--json', ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

const text = (bucket: string, name: string): string => {
  const o = gcs.object(bucket, name);
  if (!o) throw new Error(`no object gs://${bucket}/${name}`);
  return o.data.toString('utf8');
};

const comparable = (text: string) =>
  parseJsonLines<BatchResult>(text)
    .map(({ time: _time, ...r }) => r)
    .sort((a, b) => a.file.localeCompare(b.file));

describe('batch-predict --compute vertex', () => {
  it('a BatchPredictionJob on the serving container writes the results of the local batch; a re-run reuses it', async () => {
    const local = await run('--input', 'gs://emo-in/local', '--output', 'gs://emo-out/local');
    expect(local.code, local.err).toBe(0);
    const there = await run(
      '--input',
      'gs://emo-in/remote',
      '--output',
      'gs://emo-out/remote',
      '--compute',
      'vertex',
    );
    expect(there.code, there.err).toBe(0);
    expect(vertex.rejected).toEqual([]);
    expect(batch.count('create')).toBe(1);
    const job = [...batch.jobs.values()][0]!;
    expect(job.model).toMatch(/^projects\/p\/locations\/us-central1\/models\/emo@\d+$/);
    expect(batch.requests.reduce((a, b) => a + b, 0)).toBe(corpus.length);
    const summary = JSON.parse(there.out) as { predicted: number; failed: number; results: string };
    expect(summary).toMatchObject({
      predicted: corpus.length,
      failed: 0,
      results: 'gs://emo-out/remote/results.jsonl',
    });

    const a = comparable(text('emo-out', 'local/results.jsonl'));
    const b = comparable(text('emo-out', 'remote/results.jsonl'));
    expect(b.map(({ scores: _s, ...r }) => r)).toEqual(a.map(({ scores: _s, ...r }) => r));
    b.forEach((r, i) => {
      for (const [label, p] of Object.entries(a[i]!.scores)) expect(r.scores[label]).toBeCloseTo(p, 5);
    });
    expect(text('emo-out', 'remote/errors.jsonl')).toBe(text('emo-out', 'local/errors.jsonl'));
    const header = (csv: string) => csv.split('\n')[0];
    expect(header(text('emo-out', 'remote/results.csv'))).toBe(header(text('emo-out', 'local/results.csv')));
    // Inputs moved under processed/ as the local batch does.
    expect(gcs.names('emo-in').filter((n) => n.startsWith('remote/'))).toEqual([]);

    const again = await run(
      '--input',
      'gs://emo-in/remote',
      '--output',
      'gs://emo-out/remote',
      '--compute',
      'vertex',
    );
    expect(again.code, again.err).toBe(0);
    expect(batch.count('create')).toBe(1);
    expect(comparable(text('emo-out', 'remote/results.jsonl'))).toEqual(b);

    // Lost results (a crash after the job finished): the same inputs again reuse the finished
    // job of the same key instead of creating another.
    for (const n of gcs.names('emo-out'))
      if (/^remote\/(results|errors)/.test(n)) gcs.deleteObject('emo-out', n);
    seed('remote');
    const resumed = await run(
      '--input',
      'gs://emo-in/remote',
      '--output',
      'gs://emo-out/remote',
      '--compute',
      'vertex',
    );
    expect(resumed.code, resumed.err).toBe(0);
    expect(batch.count('create')).toBe(1);
    expect(
      comparable(text('emo-out', 'remote/results.jsonl')).map(({ file, label }) => [file, label]),
    ).toEqual(b.map(({ file, label }) => [file, label]));
  }, 240_000);

  it('an unknown --compute is a usage error before any job', async () => {
    const before = batch.count('create');
    const r = await run('--input', 'gs://emo-in/none', '--output', 'gs://emo-out/none', '--compute', 'gpu');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--compute: expected local or vertex "gpu"/);
    expect(batch.count('create')).toBe(before);
  });
});
