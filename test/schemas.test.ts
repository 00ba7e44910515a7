import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateJsonSchemas } from '../lib/schemas.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('schemas', () => {
  it('schemas committed next to their files are current (run npm run schemas)', async () => {
    const generated = await generateJsonSchemas(ROOT);
    expect(Object.keys(generated).sort()).toEqual([
      'lib/config.schema.json',
      'lib/lockfile.schema.json',
      'lib/registry/provenance.schema.json',
      'lib/slices/eval-metrics.schema.json',
      'params.schema.json',
      'promotion/policy.schema.json',
    ]);
    for (const [rel, text] of Object.entries(generated)) {
      expect(fs.readFileSync(path.join(ROOT, rel), 'utf8'), `${rel} is stale: run npm run schemas`).toBe(
        text,
      );
    }
  });

  it('schemas describe the formats they are generated from', async () => {
    const generated = await generateJsonSchemas(ROOT);
    const params = JSON.parse(generated['params.schema.json']!);
    expect(params.properties.train.properties.epochs.type).toBe('integer');
    expect(params.additionalProperties).toBe(false);
    const lock = JSON.parse(generated['lib/lockfile.schema.json']!);
    expect(lock.properties.schema.const).toBe(1);
    expect(lock.required).toContain('schema');
    const evalMetrics = JSON.parse(generated['lib/slices/eval-metrics.schema.json']!);
    expect(Object.keys(evalMetrics.properties).sort()).toEqual(['bootstrap', 'intervals', 'slices']);
    expect(evalMetrics.additionalProperties.type).toBe('number');
    const config = JSON.parse(generated['lib/config.schema.json']!);
    const stage = config.properties.compute.properties.stages.additionalProperties;
    expect(stage.properties.backend.enum).toEqual(['local', 'vertex']);
    expect(stage.properties.machine_type.pattern).toBeDefined();
  });
});
