import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, StageError } from '../../lib/errors.ts';
import { memoryOutput } from '../../lib/output.ts';
import type { StageContext } from '../../lib/types.ts';
import { ingestStage } from '../../stages/ingest/index.ts';
import type { IngestManifest } from '../../stages/ingest/manifest.ts';
import { paramsSchema } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { DATA_SCHEMA_FILE } from '../../stages/validate/stage.ts';
import type { ValidateReport } from '../../stages/validate/report.ts';
import { validateStage } from '../../stages/validate/index.ts';
import { writeBadAudio, type BadAudioCase } from '../support/bad-audio.ts';
import { makeTinyCorpus } from '../support/corpus.ts';

let root: string;
let cases: BadAudioCase[];
let failure: unknown;
let failOut: ReturnType<typeof memoryOutput>;
let failReport: ValidateReport;
let failMarkdown: string;
let pristineManifest: string;

const DATA = 'data/raw';
const paramsWith = (validate: Record<string, unknown> = {}) =>
  paramsSchema.parse({ data: { source: 'path', path: DATA }, validate });

function ctx(params: unknown, out = memoryOutput()): StageContext {
  return {
    root,
    params: params as Record<string, unknown>,
    out,
    abs: (rel) => path.join(root, rel),
    signal: new AbortController().signal,
    inputs: {},
  };
}
const read = (rel: string): string => fs.readFileSync(path.join(root, rel), 'utf8');
const readReport = (): ValidateReport => JSON.parse(read(`${PATHS.validate}/report.json`));
const resetSchema = (): void => fs.rmSync(path.join(root, DATA_SCHEMA_FILE), { force: true });
const resetManifest = (): void => fs.writeFileSync(path.join(root, PATHS.manifest), pristineManifest);

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-validate-'));
  await makeTinyCorpus(path.join(root, DATA), { speakers: 4, words: 1 });
  cases = await writeBadAudio(path.join(root, DATA));
  await ingestStage(paramsWith()).run(ctx(paramsWith()));
  pristineManifest = read(PATHS.manifest);
  failOut = memoryOutput();
  try {
    await validateStage(paramsWith()).run(ctx(paramsWith(), failOut));
  } catch (err) {
    failure = err;
  }
  failReport = readReport();
  failMarkdown = read(`${PATHS.validate}/report.md`);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('validate stage', () => {
  it('validate fails on data errors with a one-line StageError naming the files, after writing the reports', () => {
    expect(failure).toBeInstanceOf(StageError);
    const message = (failure as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(/^out\/validate\/report\.md: \d+ data errors \(/);
    expect(message).toContain(`${DATA}/B01_angry/B01_corrupt_angry.wav`);
    expect(message).toMatch(/validate\.on_error: exclude/);
    expect(failReport.ok).toBe(false);
    expect(failReport.excluded).toEqual([]);
    expect(failMarkdown).toMatch(/^# Data validation report/);
    expect(failMarkdown).toContain('**Failed**');
    const stats = JSON.parse(read(`${PATHS.validate}/stats.json`));
    expect(stats.files).toHaveLength(JSON.parse(pristineManifest).files.length);
    expect(Object.keys(stats.splits)).toEqual(['all', 'train', 'validation', 'test']);
    expect(stats.splits.all.labelCounts.angry).toBeGreaterThanOrEqual(4);
  });

  it('validate reports each bad-audio case with its kind and severity, in both reports', () => {
    for (const c of cases) {
      const file = `${DATA}/${c.path}`;
      const found = failReport.anomalies.filter((a) => a.file === file);
      expect(
        found.map((a) => `${a.severity}:${a.kind}`),
        c.name,
      ).toContain(`${c.severity}:${c.kind}`);
      expect(failMarkdown, c.name).toContain(`\`${file}\``);
    }
    // Each file shows its own problem only: no error anomaly on a file meant to be converted.
    for (const c of cases.filter((c) => c.expect === 'convert')) {
      const errors = failReport.anomalies.filter(
        (a) => a.file === `${DATA}/${c.path}` && a.severity === 'error',
      );
      expect(errors, c.name).toEqual([]);
    }
  });

  it('validate raises nothing about the clean synthetic files', () => {
    const clean = failReport.anomalies.filter((a) => a.file && /\/S0\d_/.test(a.file));
    expect(clean).toEqual([]);
    expect(failReport.anomalies.filter((a) => a.kind === 'class_imbalance')).toEqual([]);
  });

  it('validate infers the schema when it is missing, writes it and says so', () => {
    expect(failReport.schemaInferred).toBe(true);
    expect(failOut.stderr.join('\n')).toMatch(/schema\.yaml was missing; inferred it/);
    const yaml = read(DATA_SCHEMA_FILE);
    expect(yaml).toMatch(/^# Data schema/);
    expect(yaml).toMatch(/sample_rates:\n {2}- 16000/);
    expect(failReport.schema.labels).toEqual([
      'angry',
      'disgust',
      'fear',
      'happy',
      'neutral',
      'sad',
      'surprise',
    ]);
    expect(failReport.schema.channels).toEqual([1]);
    expect(failMarkdown).toMatch(/was missing: it was inferred/);
  });

  it('validate excludes error files with validate.on_error: exclude and passes', async () => {
    const p = paramsWith({ on_error: 'exclude' });
    const result = await validateStage(p).run(ctx(p));
    const report = readReport();
    expect(report.ok).toBe(true);
    expect(report.schemaInferred).toBe(false);
    const expected = cases.filter((c) => c.severity === 'error').map((c) => `${DATA}/${c.path}`);
    expect(report.excluded).toEqual([...expected].sort());
    expect(result && result.summary).toMatch(new RegExp(`${expected.length} excluded`));
    expect(read(`${PATHS.validate}/report.md`)).toContain('## Excluded files');
  });

  it('validate checks the files against a reviewed schema', async () => {
    const schemaFile = path.join(root, DATA_SCHEMA_FILE);
    const original = fs.readFileSync(schemaFile, 'utf8');
    try {
      fs.writeFileSync(
        schemaFile,
        original.replace(/sample_rates:\n {2}- 16000/, 'sample_rates:\n  - 22050'),
      );
      const p = paramsWith({ on_error: 'exclude' });
      await validateStage(p).run(ctx(p));
      const report = readReport();
      const mismatch = report.anomalies.filter((a) => a.kind === 'sample_rate_mismatch').map((a) => a.file);
      expect(mismatch).toContain(`${DATA}/S01_angry/S01_back_angry.wav`);
      expect(mismatch).not.toContain(`${DATA}/B01_surprise/B01_rate22050_surprise.wav`);

      fs.writeFileSync(schemaFile, 'version: 1\nlabels: []\n');
      await expect(validateStage(p).run(ctx(p))).rejects.toThrow(ConfigError);
      // Every problem at once, one line each with its line: the empty list and the missing keys.
      await expect(validateStage(p).run(ctx(p))).rejects.toThrow(
        /^stages\/validate\/schema\.yaml:2: labels: /m,
      );
      await expect(validateStage(p).run(ctx(p))).rejects.toThrow(
        /^stages\/validate\/schema\.yaml:1: sample_rates: missing/m,
      );
    } finally {
      fs.writeFileSync(schemaFile, original);
    }
  });

  it('validate reports a speaker in two splits and empty splits as errors even when excluding', async () => {
    const m = JSON.parse(pristineManifest) as IngestManifest;
    const victim = m.files.find((f) => f.speaker === 'S01')!;
    const other = (['train', 'validation', 'test'] as const).find((s) => s !== victim.split)!;
    victim.split = other;
    fs.writeFileSync(path.join(root, PATHS.manifest), JSON.stringify(m));
    const p = paramsWith({ on_error: 'exclude' });
    try {
      await expect(validateStage(p).run(ctx(p))).rejects.toThrow(/speaker_in_two_splits/);
      const leak = readReport().anomalies.find((a) => a.kind === 'speaker_in_two_splits');
      expect(leak).toMatchObject({ severity: 'error' });
      expect(leak!.detail).toContain('"S01"');

      // Everything in test: train is empty (error), validation empty (warning).
      const all = JSON.parse(pristineManifest) as IngestManifest;
      for (const f of all.files) f.split = 'test';
      all.splits = { train: [], validation: [], test: [...new Set(all.files.map((f) => f.speaker))].sort() };
      fs.writeFileSync(path.join(root, PATHS.manifest), JSON.stringify(all));
      await expect(validateStage(p).run(ctx(p))).rejects.toThrow(/empty_split/);
      const empty = readReport().anomalies.filter((a) => a.kind === 'empty_split');
      expect(empty.map((a) => `${a.severity}:${a.detail.split('"')[1]}`)).toEqual([
        'error:train',
        'warning:validation',
      ]);
    } finally {
      resetManifest();
    }
  });

  it('validate warns about class imbalance past validate.max_class_imbalance', async () => {
    const p = paramsWith({ on_error: 'exclude', max_class_imbalance: 1.1 });
    await validateStage(p).run(ctx(p));
    const imbalance = readReport().anomalies.filter((a) => a.kind === 'class_imbalance');
    expect(imbalance).toHaveLength(1);
    expect(imbalance[0]).toMatchObject({ severity: 'warning' });
    expect(imbalance[0].detail).toMatch(/ratio \d\.\d\d > validate\.max_class_imbalance 1\.1/);
  });

  it('validate reports a file deleted after ingest as missing', async () => {
    const m = JSON.parse(pristineManifest) as IngestManifest;
    m.files.push({ ...m.files[0], path: `${DATA}/S01_angry/S01_gone_angry.wav` });
    m.files.sort((a, b) => (a.path < b.path ? -1 : 1));
    fs.writeFileSync(path.join(root, PATHS.manifest), JSON.stringify(m));
    try {
      const p = paramsWith({ on_error: 'exclude' });
      await validateStage(p).run(ctx(p));
      const missing = readReport().anomalies.find((a) => a.kind === 'missing_file');
      expect(missing).toMatchObject({ severity: 'error', file: `${DATA}/S01_angry/S01_gone_angry.wav` });
      expect(readReport().excluded).toContain(`${DATA}/S01_angry/S01_gone_angry.wav`);
    } finally {
      resetManifest();
      resetSchema();
    }
  });
});
