import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeWav } from '../../lib/audio/wav.ts';
import { inspectClip, shouldPredict } from '../../lib/validation/clip.ts';
import { readInputChecks, writeInputSchema, type InputSchema } from '../../lib/validation/schema.ts';
import { voiceLike } from '../support/bad-audio.ts';

const SCHEMA: InputSchema = {
  version: 1,
  data: {
    version: 1,
    labels: ['angry'],
    sample_rates: [16000],
    channels: [1],
    bit_depths: ['16'],
    duration: { min: 0.4, max: 5.9 },
  },
  limits: { min_duration_s: 0.5, max_duration_s: 20, silence_dbfs: -60, max_clipping_ratio: 0.01 },
};

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-schema-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('input schema', () => {
  it('readInputChecks reads the schema a model directory ships and checks clips with its limits', async () => {
    await writeInputSchema(path.join(dir, 'schema.json'), SCHEMA);
    const checks = readInputChecks(dir);
    expect(checks).toEqual({
      data: SCHEMA.data,
      limits: SCHEMA.limits,
      source: path.join(dir, 'schema.json'),
    });
    // 0.45 s passes the default 0.3 s minimum but not this model's 0.5 s.
    const clip = inspectClip(encodeWav([voiceLike(16000, 0.45)], 16000, '24'), 'c.wav', checks);
    expect(clip.anomalies.map((a) => [a.severity, a.kind])).toEqual([
      ['error', 'too_short'],
      ['warning', 'bit_depth_mismatch'],
    ]);
    expect(shouldPredict(clip, 'reject')).toBe(false);
    expect(shouldPredict(clip, 'flag')).toBe(true);
  });

  it('readInputChecks falls back to the default limits, without format expectations, for a model dir without schema.json', () => {
    const checks = readInputChecks(dir);
    expect(checks.data).toBeUndefined();
    expect(checks.limits).toEqual({
      min_duration_s: 0.3,
      max_duration_s: 20,
      silence_dbfs: -60,
      max_clipping_ratio: 0.01,
    });
    expect(checks.source).toMatch(
      /^default validate limits \(.* has no schema\.json; retrain to ship the schema\)$/,
    );
    // A 24-bit 44.1 kHz clip is no anomaly without a schema; a silent one still is.
    expect(inspectClip(encodeWav([voiceLike(44100)], 44100, '24'), 'a.wav', checks).anomalies).toEqual([]);
    const silent = inspectClip(encodeWav([new Float32Array(16000)], 16000), 's.wav', checks);
    expect(silent.anomalies.map((a) => a.kind)).toEqual(['silent']);
  });

  it.each([
    ['not JSON', '{', /schema\.json: not valid JSON/],
    [
      'a bad limit',
      JSON.stringify({ ...SCHEMA, limits: { ...SCHEMA.limits, silence_dbfs: 3 } }),
      /schema\.json:1: limits\.silence_dbfs: must be <= 0, got 3\. /,
    ],
    [
      'an unknown key',
      JSON.stringify({ ...SCHEMA, extra: 1 }),
      /schema\.json:1: extra: unknown key "extra"\. /,
    ],
  ])('readInputChecks refuses a schema.json with %s instead of serving unchecked', (_name, text, message) => {
    fs.writeFileSync(path.join(dir, 'schema.json'), text);
    expect(() => readInputChecks(dir)).toThrow(message);
  });
});
