/**
 * The seeded hostile-WAV corpus (test/support/hostile-wav.ts) through ingest and validate: both
 * finish in bounded time, every file is measured, and a header out of range is reported with the
 * field it breaks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryOutput } from '../../lib/output.ts';
import type { StageContext } from '../../lib/types.ts';
import { paramsSchema } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { ingestStage } from '../../stages/ingest/index.ts';
import { validateStage } from '../../stages/validate/index.ts';
import type { ValidateReport } from '../../stages/validate/report.ts';
import { makeTinyCorpus } from '../support/corpus.ts';
import { hostileWavs } from '../support/hostile-wav.ts';

const DATA = 'data/raw';
const corpus = hostileWavs();
let root: string;

/** A TESS-style word for case `i` (letters only, as the file-name parser wants). */
const word = (i: number): string =>
  `fuzz${String(i)
    .split('')
    .map((d) => String.fromCharCode(97 + Number(d)))
    .join('')}`;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-validate-fuzz-'));
  await makeTinyCorpus(path.join(root, DATA), { speakers: 4, words: 1 });
  const dir = path.join(root, DATA, 'Z09_angry');
  fs.mkdirSync(dir, { recursive: true });
  corpus.forEach((c, i) => fs.writeFileSync(path.join(dir, `Z09_${word(i)}_angry.wav`), c.bytes));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('validate with hostile WAV headers', () => {
  it('validate measures every hostile-header file in bounded time and names the field of each refused header', async () => {
    const params = paramsSchema.parse({
      data: { source: 'path', path: DATA },
      validate: { on_error: 'exclude' },
    });
    const ctx: StageContext = {
      root,
      params: params as unknown as Record<string, unknown>,
      out: memoryOutput(),
      abs: (rel) => path.join(root, rel),
      signal: new AbortController().signal,
      inputs: {},
    };
    const started = performance.now();
    await ingestStage(params).run(ctx);
    await validateStage(params).run(ctx);
    const seconds = (performance.now() - started) / 1000;
    expect(seconds).toBeLessThan(30);
    const report = JSON.parse(
      fs.readFileSync(path.join(root, PATHS.validate, 'report.json'), 'utf8'),
    ) as ValidateReport;
    const stats = JSON.parse(fs.readFileSync(path.join(root, PATHS.validate, 'stats.json'), 'utf8')) as {
      files: Array<{ path: string; error?: string }>;
    };
    const fuzzed = stats.files.filter((f) => f.path.includes('/Z09_angry/'));
    expect(fuzzed).toHaveLength(corpus.length);
    const rate = fuzzed.find((f) =>
      f.path.endsWith(`Z09_${word(corpus.findIndex((c) => c.name === 'sampleRate=1828732544'))}_angry.wav`),
    );
    expect(rate?.error).toMatch(/sampleRate out of range "1828732544"/);
    expect(fuzzed.filter((f) => f.error).length).toBeGreaterThan(100);
    expect(report.excluded.length).toBeGreaterThan(100);
  }, 120_000);
});
