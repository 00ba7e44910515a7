import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { batchPredict, readJsonLines, type BatchResult } from '../../stages/batch/index.ts';
import { loadModelDir, type LoadedModel } from '../../lib/ml/model.ts';
import { makeTinyCorpus } from '../support/corpus.ts';
import { makeAudioModel } from '../support/audio-model.ts';

let tmp: string;
let corpus: string[];
let model: LoadedModel;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-batch-'));
  corpus = await makeTinyCorpus(path.join(tmp, 'corpus'), { speakers: 2, words: 1 });
  await makeAudioModel(path.join(tmp, 'model'), corpus, { epochs: 5 });
  model = await loadModelDir(path.join(tmp, 'model'));
}, 120_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Copies the corpus (plus bad files) into a fresh input folder. */
function freshInput(name: string): string {
  const dir = path.join(tmp, name, 'in');
  for (const f of corpus) {
    const rel = path.relative(path.join(tmp, 'corpus'), f);
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.copyFileSync(f, path.join(dir, rel));
  }
  fs.writeFileSync(path.join(dir, 'notes.wav'), 'this is a text file named .wav');
  fs.writeFileSync(path.join(dir, 'empty.wav'), '');
  return dir;
}

describe('batchPredict', () => {
  it('batchPredict predicts every file, lists bad files and moves inputs only after results are written', async () => {
    const input = freshInput('run1');
    const output = path.join(tmp, 'run1', 'out');
    const s = await batchPredict({ input, output, model, modelHash: 'm'.repeat(64), chunk: 5, workers: 2 });
    expect(s.predicted).toBe(corpus.length);
    expect(s.failed).toBe(2);
    const results = readJsonLines<BatchResult>(s.results);
    expect(results).toHaveLength(corpus.length);
    for (const r of results) {
      expect(model.labels).toContain(r.label);
      expect(Object.values(r.scores).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    }
    const errors = readJsonLines<{ file: string; reason: string }>(s.errors);
    expect(errors.map((e) => e.file).sort()).toEqual(['empty.wav', 'notes.wav']);
    expect(errors.find((e) => e.file === 'notes.wav')!.reason).toMatch(/not a WAV file/);
    // Inputs are gone from the input folder, kept under processed/ and failed/.
    expect(fs.readdirSync(input).filter((n) => fs.statSync(path.join(input, n)).isFile())).toEqual([]);
    expect(fs.existsSync(path.join(output, 'failed', 'notes.wav'))).toBe(true);
    const csv = fs.readFileSync(s.csv, 'utf8').trim().split('\n');
    expect(csv).toHaveLength(corpus.length + 1);
    expect(csv[0]).toBe(
      ['file', 'sha256', 'label', ...model.labels.map((l) => `p_${l}`), 'model', 'time'].join(','),
    );
  });

  it('batchPredict resumes after a crash between durable results and the input move, losing and repeating nothing', async () => {
    const input = freshInput('run2');
    const output = path.join(tmp, 'run2', 'out');
    let chunks = 0;
    await expect(
      batchPredict({
        input,
        output,
        model,
        modelHash: 'm'.repeat(64),
        chunk: 4,
        workers: 1,
        afterDurable: () => {
          if (++chunks === 2) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow(/simulated crash/);
    // A torn line, as a kill mid-append would leave.
    fs.appendFileSync(path.join(output, 'results.jsonl'), '{"file":"half');
    const s = await batchPredict({ input, output, model, modelHash: 'm'.repeat(64), chunk: 4, workers: 1 });
    expect(s.resumed).toBe(4); // the crashed chunk's results were durable: only moved now
    const results = readJsonLines<BatchResult>(s.results);
    expect(results).toHaveLength(corpus.length);
    expect(new Set(results.map((r) => r.file)).size).toBe(corpus.length);
    // Running again does nothing.
    const again = await batchPredict({ input, output, model, modelHash: 'm'.repeat(64) });
    expect(again.predicted + again.resumed + again.failed).toBe(0);
    expect(readJsonLines<BatchResult>(s.results)).toHaveLength(corpus.length);
  });

  it('batchPredict refuses an output folder inside the input', async () => {
    const input = freshInput('run3');
    await expect(
      batchPredict({ input, output: path.join(input, 'out'), model, modelHash: 'x' }),
    ).rejects.toThrow(/inside --input/);
  });
});
