/**
 * One input schema for training and serving: every clip the validate stage calls an error is
 * refused, with validate's own reason, by the HTTP server, the Vertex AI container entry,
 * `lockstep predict` and `lockstep batch-predict` (local folders and gs://), checked against the
 * schema shipped inside the model directory. Warnings are served and logged; the policy switch
 * `serving.on_error_anomaly: flag` predicts anyway; monitoring reports the anomaly rate.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { encodeWav } from '../../lib/audio/wav.ts';
import { main } from '../../lib/cli/main.ts';
import { writeLockfile } from '../../lib/lockfile.ts';
import {
  DEFAULT_THRESHOLDS,
  computeMonitorReport,
  renderMonitorMarkdown,
} from '../../lib/monitoring/monitor.ts';
import { memoryOutput } from '../../lib/output.ts';
import { readOnErrorAnomaly } from '../../lib/serving/checks.ts';
import { storageUriSource } from '../../lib/serving/container.ts';
import { PredictionLog, readPredictionLogs, predictionLogDir } from '../../lib/serving/logs.ts';
import { startServer, stopServer } from '../../lib/serving/server.ts';
import { commitArtifact } from '../../lib/store/artifacts.ts';
import type { Anomaly } from '../../lib/validation/anomaly.ts';
import {
  defaultInputChecks,
  readDataSchema,
  readInputChecks,
  writeInputSchema,
  type DataSchema,
} from '../../lib/validation/schema.ts';
import { batchPredict, parseJsonLines, readJsonLines, type BatchResult } from '../../stages/batch/index.ts';
import { fileAnomalies } from '../../stages/validate/anomalies.ts';
import { measureFile } from '../../stages/validate/stats.ts';
import { makeAudioModel } from '../support/audio-model.ts';
import { voiceLike } from '../support/bad-audio.ts';
import { makeTinyCorpus } from '../support/corpus.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

const BIN = path.resolve('bin/lockstep.mjs');
const RATE = 16000;
const LIMITS = defaultInputChecks().limits;

interface Case {
  name: string;
  bytes: Uint8Array;
  /** The kind the table says validate reports. */
  kind: string;
}

/** 32-bit float samples in a WAVE_FORMAT_EXTENSIBLE file (sub-format IEEE float), as many tools write them. */
function extensibleFloatWav(samples: Float32Array, rate: number): Buffer {
  const data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  const b = Buffer.alloc(68 + data.length);
  b.write('RIFF', 0);
  b.writeUInt32LE(b.length - 8, 4);
  b.write('WAVEfmt ', 8);
  b.writeUInt32LE(40, 16);
  b.writeUInt16LE(65534, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 4, 28);
  b.writeUInt16LE(4, 32);
  b.writeUInt16LE(32, 34);
  b.writeUInt16LE(22, 36);
  b.writeUInt16LE(32, 38);
  b.writeUInt32LE(4, 40);
  Buffer.from('0300000000001000800000aa00389b71', 'hex').copy(b, 44);
  b.write('data', 60);
  b.writeUInt32LE(data.length, 64);
  data.copy(b, 68);
  return b;
}

/** The inputs of the table, as files. */
function tableCases(): Case[] {
  const good = encodeWav([voiceLike(RATE)], RATE, '16');
  const nan = voiceLike(RATE);
  nan[100] = Number.NaN;
  nan[200] = Number.POSITIVE_INFINITY;
  // One sample in four at 1 LSB: RMS 1/(2·32768), about -96 dBFS.
  const quiet = new Float32Array(RATE).map((_, i) => (i % 4 === 0 ? 1 / 32767 : 0));
  const tag85 = Buffer.from(good);
  tag85.writeUInt16LE(85, 20); // format tag 85: MPEG layer 3 in a RIFF container
  return [
    { name: 'nan.wav', bytes: encodeWav([nan], RATE, '32f'), kind: 'non_finite' },
    { name: 'silent.wav', bytes: encodeWav([quiet], RATE, '16'), kind: 'silent' },
    { name: 'short.wav', bytes: encodeWav([voiceLike(RATE, 0.01)], RATE, '16'), kind: 'too_short' },
    { name: 'nosamples.wav', bytes: encodeWav([new Float32Array(0)], RATE, '16'), kind: 'too_short' },
    { name: 'tag85.wav', bytes: tag85, kind: 'unreadable' },
    { name: 'truncated.wav', bytes: good.subarray(0, 44 + 1001), kind: 'unreadable' },
    { name: 'text.wav', bytes: Buffer.from('This is not audio, only text named .wav\n'), kind: 'unreadable' },
    { name: 'empty.wav', bytes: new Uint8Array(0), kind: 'unreadable' },
    { name: 'riffonly.wav', bytes: Buffer.from('RIFF\x04\x00\x00\x00WAVE', 'latin1'), kind: 'unreadable' },
    { name: 'nan-extensible.wav', bytes: extensibleFloatWav(nan, RATE), kind: 'non_finite' },
  ];
}

let t: TmpRepo;
let modelDir: string;
let schema: DataSchema;
let corpus: string[];
let cases: Case[];
/** A good clip in a format the schema does not expect (24-bit): a warning, still predicted. */
let warnClip: Buffer;

/** What the validate stage reports as errors for these bytes (the oracle). */
function validateErrors(bytes: Uint8Array): Anomaly[] {
  const stats = measureFile(
    bytes,
    { path: 'x.wav', label: 'angry', speaker: 'S', split: 'train' },
    LIMITS.silence_dbfs,
  );
  return fileAnomalies(stats, schema, { ...LIMITS, max_class_imbalance: 3 }).filter(
    (a) => a.severity === 'error',
  );
}

/** The reason must carry every error detail validate gives, in validate's words. */
function expectValidateReason(reason: string, c: Case): void {
  const errors = validateErrors(c.bytes);
  expect(
    errors.map((a) => a.kind),
    c.name,
  ).toContain(c.kind);
  for (const a of errors) expect(reason, c.name).toContain(`${a.kind}: ${a.detail.replace(/\.$/, '')}`);
}

async function cli(...args: string[]) {
  const out = memoryOutput();
  const code = await main(['-C', t.root, ...args], out);
  return { code, stdout: out.stdout.join('\n'), stderr: out.stderr.join('\n') };
}

async function post(url: string, instances: unknown[]) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const audio = (bytes: Uint8Array) => ({ audio: Buffer.from(bytes).toString('base64') });

beforeAll(async () => {
  t = await createTmpRepo({
    'promotion/dev.yaml': 'branch: dev\nendpoint: { kind: local }\n',
    'promotion/staging.yaml':
      'branch: staging\nendpoint: { kind: local }\nserving: { on_error_anomaly: flag }\n',
  });
  corpus = await makeTinyCorpus(path.join(t.root, 'corpus'), { speakers: 2 });
  modelDir = path.join(t.root, 'models', 'm');
  await makeAudioModel(modelDir, corpus, { epochs: 3 });
  // The schema as validate ships it: the repository's data schema and the validate limits.
  schema = (await readDataSchema(path.resolve('stages/validate/schema.yaml'), 'schema.yaml'))!;
  await writeInputSchema(path.join(modelDir, 'schema.json'), { version: 1, data: schema, limits: LIMITS });
  cases = tableCases();
  const samples = voiceLike(RATE);
  warnClip = encodeWav([samples], RATE, '24');
  fs.cpSync(modelDir, path.join(t.root, 'out/model'), { recursive: true });
  const ref = await commitArtifact(t.repo, 'out/model');
  await writeLockfile(t.repo, {
    schema: 1,
    data: {},
    stages: { train: { code: 'c'.repeat(64), deps: [], params: {}, outs: [ref] } },
  });
  for (const env of ['dev', 'staging']) {
    const r = await cli('canary', 'reconcile', '--env', env, '--working-tree');
    expect(r.code, r.stderr).toBe(0);
  }
}, 180_000);

afterAll(async () => {
  await t?.cleanup();
});

describe('input checks', () => {
  it('input checks: the server refuses every error case of the table with validate reason and logs it', async () => {
    const log = new PredictionLog(path.join(t.root, 'logs-http'));
    const source = await storageUriSource(modelDir, { deployedModelId: '5' });
    let app: FastifyInstance | undefined;
    try {
      const started = await startServer({ source, env: 'test', log });
      app = started.app;
      const url = `${started.url}/predict`;
      for (const c of cases) {
        const res = await post(url, [audio(c.bytes)]);
        expect(res.status, c.name).toBe(400);
        expect(res.body.error, c.name).toMatch(/^instances\[0\]\.audio: /);
        expectValidateReason(res.body.error, c);
        expect(res.body.rejected[0].instance).toBe(0);
        const found = res.body.rejected[0].anomalies as Anomaly[];
        expect(found.filter((a) => a.severity === 'error').map((a) => a.kind)).toEqual(
          validateErrors(c.bytes).map((a) => a.kind),
        );
      }
      // A good clip, a warned one, and a request mixing a good and a refused instance.
      const ok = await post(url, [audio(fs.readFileSync(corpus[0]))]);
      expect(ok.status).toBe(200);
      expect(ok.body.predictions[0].anomalies).toBeUndefined();
      const warned = await post(url, [audio(warnClip)]);
      expect(warned.status).toBe(200);
      expect(warned.body.predictions[0].anomalies).toEqual([
        expect.objectContaining({ severity: 'warning', kind: 'bit_depth_mismatch' }),
      ]);
      const mixed = await post(url, [audio(fs.readFileSync(corpus[1])), audio(cases[1].bytes)]);
      expect(mixed.status).toBe(400);
      expect(mixed.body.error).toMatch(/^instances\[1\]\.audio: silent: /);
    } finally {
      if (app) await stopServer(app);
    }
    const entries = readPredictionLogs(log.dir);
    const rejected = entries.filter((e) => e.status === 'rejected');
    expect(rejected).toHaveLength(cases.length + 1);
    expect(rejected.every((e) => e.deployedModelId === '5' && e.anomalies!.length > 0)).toBe(true);
    const warnedLog = entries.find((e) => e.status === 'ok' && e.anomalies);
    expect(warnedLog!.anomalies![0].kind).toBe('bit_depth_mismatch');

    // The monitor report of that window: anomaly rate per kind, and an alert above the threshold.
    const report = computeMonitorReport(
      'test',
      entries,
      { featureNames: [], histograms: {} },
      {
        ...DEFAULT_THRESHOLDS,
        min_samples: 5,
        max_anomaly_rate: 0.1,
        anomaly_rates: { bit_depth_mismatch: 0.5 },
      },
      new Date(Date.now() + 1000),
    );
    const byKind = Object.fromEntries(report.anomalies.kinds.map((k) => [k.kind, k]));
    expect(report.anomalies.requests).toBe(entries.length);
    expect(report.anomalies.rejected).toBe(cases.length + 1);
    expect(byKind.unreadable).toMatchObject({ count: 5, rejected: 5, severity: 'error', alert: true });
    expect(byKind.unreadable.rate).toBeCloseTo(5 / entries.length, 6);
    const silentCases = cases.filter((c) => validateErrors(c.bytes).some((a) => a.kind === 'silent')).length;
    expect(byKind.silent).toMatchObject({ rejected: silentCases + 1, alert: true });
    // The warned clip (24-bit) was answered; the two NaN clips (32-bit float, plain and
    // extensible) were refused for non_finite.
    expect(byKind.bit_depth_mismatch).toMatchObject({ count: 3, rejected: 2, threshold: 0.5, alert: false });
    expect(report.status).toBe('alert');
    expect(report.alerts).toContain(
      `input anomaly: unreadable in ${((5 / entries.length) * 100).toFixed(1)}% of requests > 10.0% (5 rejected)`,
    );
    expect(renderMonitorMarkdown(report)).toContain(
      `### Input anomalies (${cases.length + 1} of ${entries.length} requests rejected)`,
    );
  });

  it('input checks: with serving.on_error_anomaly flag the server predicts and flags, but refuses clips with no audio', async () => {
    const source = await storageUriSource(modelDir, { deployedModelId: '5' });
    const { app, url } = await startServer({ source, env: 'test', onErrorAnomaly: 'flag' });
    try {
      for (const c of cases) {
        const res = await post(`${url}/predict`, [audio(c.bytes)]);
        const noAudio = c.kind === 'unreadable' || c.name === 'nosamples.wav';
        expect(res.status, c.name).toBe(noAudio ? 400 : 200);
        if (!noAudio)
          expect(
            res.body.predictions[0].anomalies.map((a: Anomaly) => a.kind),
            c.name,
          ).toContain(c.kind);
      }
    } finally {
      await stopServer(app);
    }
  });

  it.each([
    [undefined, 'reject'],
    ['', 'reject'],
    ['reject', 'reject'],
    ['flag', 'flag'],
  ])('input checks: the container reads LOCKSTEP_ON_ERROR_ANOMALY=%s as %s', (value, mode) => {
    expect(readOnErrorAnomaly(value === undefined ? {} : { LOCKSTEP_ON_ERROR_ANOMALY: value })).toBe(mode);
  });

  it('input checks: the container refuses a LOCKSTEP_ON_ERROR_ANOMALY it does not know', () => {
    expect(() => readOnErrorAnomaly({ LOCKSTEP_ON_ERROR_ANOMALY: 'predict' })).toThrow(
      /^LOCKSTEP_ON_ERROR_ANOMALY: not "reject" or "flag" "predict"\. /,
    );
  });

  it('input checks: the Vertex AI container entry (AIP_* variables) refuses the same cases with the same reasons', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const predictRoute = '/v1/endpoints/1/deployedModels/2:predict';
    const container = spawn(process.execPath, [BIN, 'serve'], {
      cwd: t.root,
      env: {
        ...process.env,
        AIP_HTTP_PORT: String(port),
        AIP_PREDICT_ROUTE: predictRoute,
        AIP_STORAGE_URI: modelDir,
        AIP_DEPLOYED_MODEL_ID: '2',
        AIP_ENDPOINT_ID: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    container.stderr!.on('data', (d) => (stderr += String(d)));
    try {
      await new Promise<void>((resolve, reject) => {
        container.stdout!.on('data', (d) => String(d).includes('serving') && resolve());
        container.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
        setTimeout(() => reject(new Error('container mode did not start')), 60_000);
      });
      const url = `http://127.0.0.1:${port}${predictRoute}`;
      for (const c of cases) {
        const res = await post(url, [audio(c.bytes)]);
        expect(res.status, c.name).toBe(400);
        expectValidateReason(res.body.error, c);
      }
      expect((await post(url, [audio(fs.readFileSync(corpus[0]))])).status).toBe(200);
      expect(stderr).toContain(`input checks of 2: ${path.join(modelDir, 'schema.json')}`);
    } finally {
      container.kill('SIGTERM');
      await new Promise((r) => (container.exitCode !== null ? r(undefined) : container.once('exit', r)));
    }
  }, 90_000);

  it('input checks: lockstep predict refuses a FIFO or a device instead of reading it for ever', async () => {
    const fifo = path.join(t.root, 'clip-fifo.wav');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const f of [fifo, '/dev/zero']) {
      const r = await cli('predict', f, '--env', 'dev');
      expect(r.code, f).toBe(2);
      expect(r.stderr, f).toMatch(new RegExp(`${f}: not a regular file\\. Pass a WAV file path\\.$`));
    }
    fs.rmSync(fifo);
  }, 20_000);

  it('input checks: lockstep predict exits 1 naming the file with validate reason, and predicts good and warned files', async () => {
    const dir = path.join(t.root, 'clips');
    fs.mkdirSync(dir, { recursive: true });
    for (const c of cases) {
      const file = path.join(dir, c.name);
      fs.writeFileSync(file, c.bytes);
      const r = await cli('predict', file, '--env', 'dev');
      expect(r.code, c.name).toBe(1);
      expect(r.stderr, c.name).toContain(`${file}: `);
      expectValidateReason(r.stderr, c);
    }
    const warned = path.join(dir, 'warned.wav');
    fs.writeFileSync(warned, warnClip);
    const ok = await cli('predict', corpus[0], warned, '--env', 'dev');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.split('\n')).toHaveLength(2);
    expect(ok.stderr).toContain(`${warned}: warning bit_depth_mismatch: sample format "24"`);
    // staging flags instead of refusing.
    const flagged = await cli('predict', path.join(dir, 'silent.wav'), '--env', 'staging');
    expect(flagged.code, flagged.stderr).toBe(0);
    expect(flagged.stderr).toMatch(/silent\.wav: error silent: RMS -9\d\.\d dBFS/);
    const logged = readPredictionLogs(predictionLogDir(t.root, 'dev'));
    expect(logged.filter((e) => e.status === 'rejected')).toHaveLength(cases.length);
  }, 120_000);

  it('input checks: lockstep monitor reports the anomaly rate per kind of the window with the rejected predict requests', async () => {
    // Runs after the predict test: .lockstep/logs/dev holds its refused and answered requests.
    const logged = readPredictionLogs(predictionLogDir(t.root, 'dev'));
    expect(logged.filter((e) => e.status === 'rejected')).toHaveLength(cases.length);
    t.write('params.yaml', 'monitor: { min_samples: 5 }\n');
    t.write('out/features/stats.json', '{}');
    t.write('out/features/index.json', JSON.stringify({ featureNames: [], labels: [], splits: {} }));
    const r = await cli('monitor', '--env', 'dev', '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.anomalies.requests).toBe(logged.length);
    expect(report.anomalies.rejected).toBe(cases.length);
    const unreadable = report.anomalies.kinds.find((k: { kind: string }) => k.kind === 'unreadable');
    expect(unreadable).toMatchObject({ count: 5, rejected: 5, threshold: 0.05, alert: true });
    expect(report.status).toBe('alert');
    expect(report.alerts.some((a: string) => a.startsWith('input anomaly: unreadable in '))).toBe(true);
    const text = await cli('monitor', '--env', 'dev', '--fail-on-alert');
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/anomaly unreadable \(error\): 5\/\d+ requests \(\d+\.\d%\), 5 rejected/);
    expect(t.read('out/monitor/dev/report.md')).toContain('### Input anomalies');
  });

  it('input checks: lockstep batch-predict lists every error case in errors.jsonl and failed/ with validate reason', async () => {
    const input = path.join(t.root, 'batch-in');
    const output = path.join(t.root, 'batch-out');
    for (const c of cases) {
      fs.mkdirSync(input, { recursive: true });
      fs.writeFileSync(path.join(input, c.name), c.bytes);
    }
    fs.copyFileSync(corpus[0], path.join(input, 'good.wav'));
    fs.writeFileSync(path.join(input, 'warned.wav'), warnClip);
    const r = await cli(
      'batch-predict',
      '--env',
      'dev',
      '--input',
      input,
      '--output',
      output,
      '-j',
      '1',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ predicted: 2, failed: cases.length });
    const results = readJsonLines<BatchResult>(path.join(output, 'results.jsonl'));
    expect(results.map((x) => x.file).sort()).toEqual(['good.wav', 'warned.wav']);
    expect(results.find((x) => x.file === 'warned.wav')!.anomalies![0].kind).toBe('bit_depth_mismatch');
    const errors = readJsonLines<{ file: string; reason: string; anomalies: Anomaly[] }>(
      path.join(output, 'errors.jsonl'),
    );
    expect(errors.map((e) => e.file).sort()).toEqual(cases.map((c) => c.name).sort());
    for (const c of cases) {
      const e = errors.find((x) => x.file === c.name)!;
      expect(e.reason.startsWith(`${c.name}: `), e.reason).toBe(true);
      expectValidateReason(e.reason, c);
      expect(fs.existsSync(path.join(output, 'failed', c.name)), c.name).toBe(true);
    }
    expect(fs.readdirSync(input)).toEqual([]);
  }, 120_000);

  it('input checks: batch-predict over gs:// refuses the same cases (fake GCS)', async () => {
    const fake = await FakeGcs.start();
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = fake.url;
    try {
      for (const c of cases) fake.putObject('emo-in', `b/${c.name}`, Buffer.from(c.bytes));
      fake.putObject('emo-in', 'b/good.wav', fs.readFileSync(corpus[0]));
      const r = await cli(
        'batch-predict',
        '--env',
        'dev',
        '--input',
        'gs://emo-in/b',
        '--output',
        'gs://emo-out/b',
        '--json',
      );
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ predicted: 1, failed: cases.length });
      const text = (name: string) => fake.object('emo-out', name)!.data.toString('utf8');
      const errors = parseJsonLines<{ file: string; reason: string }>(text('b/errors.jsonl'));
      expect(errors.map((e) => e.file).sort()).toEqual(cases.map((c) => c.name).sort());
      for (const c of cases) expectValidateReason(errors.find((e) => e.file === c.name)!.reason, c);
      expect(parseJsonLines<BatchResult>(text('b/results.jsonl')).map((x) => x.file)).toEqual(['good.wav']);
      for (const c of cases) expect(fake.object('emo-out', `b/failed/${c.name}`), c.name).toBeDefined();
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
      await fake.close();
    }
  }, 120_000);

  it('input checks: a mixed batch interrupted after each chunk finishes with every file in exactly one of results and errors', async () => {
    const { loadModelDir } = await import('../../lib/ml/model.ts');
    const model = await loadModelDir(modelDir);
    const checks = readInputChecks(modelDir);
    const input = path.join(t.root, 'crash-in');
    const output = path.join(t.root, 'crash-out');
    fs.mkdirSync(input, { recursive: true });
    // Good and refused files interleaved, so every chunk holds both.
    const names: string[] = [];
    cases.forEach((c, i) => {
      fs.writeFileSync(path.join(input, `${i}-bad-${c.name}`), c.bytes);
      fs.copyFileSync(corpus[i % corpus.length], path.join(input, `${i}-good.wav`));
      names.push(`${i}-bad-${c.name}`, `${i}-good.wav`);
    });
    let crashes = 0;
    for (let run = 0; run < 20; run++) {
      let chunks = 0;
      try {
        await batchPredict({
          input,
          output,
          model,
          modelHash: 'm'.repeat(64),
          checks,
          chunk: 3,
          workers: 1,
          afterDurable: () => {
            if (++chunks === 1) throw new Error('simulated crash');
          },
        });
        break;
      } catch (err) {
        expect((err as Error).message).toBe('simulated crash');
        crashes++;
      }
    }
    expect(crashes).toBeGreaterThan(2);
    // The final run, uninterrupted, finds nothing left but ends the batch.
    const s = await batchPredict({ input, output, model, modelHash: 'm'.repeat(64), checks, workers: 1 });
    expect(s.predicted + s.failed).toBe(0);
    const results = readJsonLines<BatchResult>(path.join(output, 'results.jsonl')).map((r) => r.file);
    const errors = readJsonLines<{ file: string }>(path.join(output, 'errors.jsonl')).map((e) => e.file);
    expect([...results, ...errors].sort()).toEqual([...names].sort());
    expect(results.every((f) => f.endsWith('-good.wav'))).toBe(true);
    expect(errors.every((f) => f.includes('-bad-'))).toBe(true);
    expect(fs.readdirSync(path.join(output, 'failed')).sort()).toEqual(errors.sort());
    expect(fs.readdirSync(path.join(output, 'processed')).sort()).toEqual(results.sort());
    expect(fs.readdirSync(input)).toEqual([]);
  }, 120_000);
});
