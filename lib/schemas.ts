/**
 * Generated JSON Schemas for editors, each next to the file it describes, all from the one zod
 * schema of that format: `params.schema.json`, `lib/lockfile.schema.json`,
 * `promotion/policy.schema.json`, `lib/registry/provenance.schema.json`,
 * `lib/slices/eval-metrics.schema.json` (evaluate's metrics file), `lib/config.schema.json`.
 * `npm run schemas` rewrites them; a test checks they are current.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { paramsJsonSchema } from './params.ts';
import { lockfileJsonSchema } from './lockfile.ts';
import { policySchema } from './environment/policy.ts';
import { provenanceJsonSchema } from './registry/provenance.ts';
import { configSchema } from './config.ts';
import { writeFileAtomic } from './atomic.ts';
import { evalMetricsSchema } from './slices/shape.ts';

/**
 * Repository-relative path → generated schema text, formatted with the repository's Prettier
 * settings so `prettier --check .` accepts the committed files.
 */
export async function generateJsonSchemas(root: string): Promise<Record<string, string>> {
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(path.join(root, 'params.schema.json'))) ?? {};
  const texts: Record<string, string> = {};
  for (const [rel, schema] of Object.entries(rawSchemas())) {
    texts[rel] = await prettier.format(JSON.stringify(schema), { ...options, parser: 'json' });
  }
  return texts;
}

function rawSchemas(): Record<string, Record<string, unknown>> {
  const render = (title: string, schema: Record<string, unknown>) => ({ title, ...schema });
  return {
    'params.schema.json': render('lockstep params.yaml', paramsJsonSchema()),
    'lib/lockfile.schema.json': render('lockstep artifacts.lock.yaml', lockfileJsonSchema()),
    'promotion/policy.schema.json': render(
      'lockstep promotion/<env>.yaml',
      z.toJSONSchema(policySchema, { io: 'input' }) as Record<string, unknown>,
    ),
    'lib/registry/provenance.schema.json': render(
      'lockstep provenance statement (in-toto Statement v1, SLSA Provenance v1)',
      provenanceJsonSchema(),
    ),
    'lib/slices/eval-metrics.schema.json': render(
      'lockstep out/eval/metrics.json',
      z.toJSONSchema(evalMetricsSchema, { io: 'output' }) as Record<string, unknown>,
    ),
    'lib/config.schema.json': render(
      'lockstep .lockstep/config.yaml',
      z.toJSONSchema(configSchema, { io: 'input' }) as Record<string, unknown>,
    ),
  };
}

/** Writes every generated schema under `root`; returns the paths that changed. */
export async function writeJsonSchemas(root: string): Promise<string[]> {
  const changed: string[] = [];
  for (const [rel, text] of Object.entries(await generateJsonSchemas(root))) {
    const abs = path.join(root, rel);
    const current = fs.existsSync(abs) ? fs.readFileSync(abs, 'utf8') : undefined;
    if (current === text) continue;
    await writeFileAtomic(abs, text);
    changed.push(rel);
  }
  return changed;
}

// `node --import tsx lib/schemas.ts` (npm run schemas) regenerates the files of this checkout.
if (import.meta.url === `file://${process.argv[1]}`) {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  const changed = await writeJsonSchemas(root);
  process.stdout.write(changed.length ? `wrote ${changed.join(', ')}\n` : 'JSON Schemas are current\n');
}
