import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const DENY = path.join(ROOT, 'test/support/deny-imports.mjs');

// In a fresh process where every ML package fails to import: build the pipeline, print each
// stage's name, then run the train stage (whose body needs TensorFlow.js) and print its error.
const SCRIPT = `
const { repoAt } = await import('./lib/repo.ts');
const { loadParams } = await import('./lib/params.ts');
const { pipeline } = await import('./stages/pipeline.ts');
const stages = pipeline(loadParams(repoAt(process.cwd())));
console.log(stages.map((s) => s.name).join(' '));
try {
  await stages.find((s) => s.name === 'train').run({ root: process.cwd(), params: {}, abs: (p) => p });
  console.log('train ran');
} catch (err) {
  console.log(String(err.message).split('\\n')[0]);
}`;

describe('stage declarations', () => {
  it('pipeline(params) loads no ML library; a stage imports its body only when it runs', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', '--import', DENY, '--input-type=module', '-e', SCRIPT],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          DENY_IMPORTS: '^(@tensorflow/|meyda|vega|@google-cloud/|fastify|espeak-ng|@resvg/)',
        },
        timeout: 60_000,
      },
    );
    const [names, train] = stdout.trim().split('\n');
    expect(names).toBe('data ingest validate featurize train evaluate gate');
    // Running train reaches the body, whose first ML import is refused.
    expect(train).toMatch(/^deny-imports: "@tensorflow\//);
  });
});
