/**
 * Runner benchmark: what the plan/run-cache saves, measured on one pipeline in one run.
 * A two-stage pipeline (prepare → train) whose train stage computes for ~0.4 s and writes a
 * 4 MB model directory, in a temp git repository.
 *
 * - runcache_speedup_vs_rerun: seconds to re-run train after switching params back (forced, the
 *   baseline) / seconds to restore the same outputs from the run-cache.
 * - noop_speedup_vs_full: seconds of a first full run / seconds of a repro where all is up to date.
 * - full_ms, rerun_ms, runcache_ms, noop_ms: the raw times.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { createTmpRepo } from '../test/support/tmp-repo.ts';
import { loadParams } from '../lib/params.ts';
import { memoryOutput } from '../lib/output.ts';
import { reproduce } from '../lib/pipeline/run.ts';
import type { StageDef } from '../lib/types.ts';

function stages(): StageDef[] {
  return [
    {
      name: 'prepare',
      description: 'copies the input',
      code: ['code.txt'],
      deps: ['data/input.txt'],
      params: ['data.seed'],
      outs: ['out/prepared.txt'],
      async run(ctx) {
        fs.mkdirSync(ctx.abs('out'), { recursive: true });
        fs.copyFileSync(ctx.abs('data/input.txt'), ctx.abs('out/prepared.txt'));
      },
    },
    {
      name: 'train',
      description: 'hashes for a while and writes a 4 MB model',
      code: ['code.txt'],
      deps: ['out/prepared.txt'],
      params: ['train.lr'],
      outs: ['out/model'],
      async run(ctx) {
        let h = Buffer.from(String(ctx.params.train.lr));
        const until = performance.now() + 400;
        while (performance.now() < until) h = createHash('sha256').update(h).digest();
        fs.mkdirSync(ctx.abs('out/model'), { recursive: true });
        for (let i = 0; i < 4; i++) {
          const block = Buffer.alloc(1 << 20);
          for (let j = 0; j < block.length; j += 32) h.copy(block, j, 0, Math.min(32, block.length - j));
          fs.writeFileSync(ctx.abs(`out/model/part-${i}.bin`), block);
          h = createHash('sha256').update(h).digest();
        }
      },
    },
  ];
}

export default async function (): Promise<Record<string, number | string>> {
  const t = await createTmpRepo({
    'params.yaml': 'train:\n  lr: 0.01\n',
    'data/input.txt': 'hello\n',
    'code.txt': 'v1\n',
  });
  try {
    const run = async (force = false) => {
      const params = loadParams(t.repo);
      const started = performance.now();
      const report = await reproduce(t.repo, stages(), { params, out: memoryOutput(), force });
      if (!report.ok) throw new Error(`bench pipeline failed: ${JSON.stringify(report.failures)}`);
      return { ms: performance.now() - started, report };
    };
    const full = await run();
    const noop = await run();
    t.write('params.yaml', 'train:\n  lr: 0.02\n');
    await run();
    t.write('params.yaml', 'train:\n  lr: 0.01\n');
    const restored = await run();
    if (restored.report.stages.find((s) => s.name === 'train')?.status !== 'restored') {
      throw new Error('expected train to be restored from the run-cache');
    }
    const rerun = await run(true);
    return {
      runcache_speedup_vs_rerun: Number((rerun.ms / restored.ms).toFixed(2)),
      noop_speedup_vs_full: Number((full.ms / noop.ms).toFixed(2)),
      full_ms: Math.round(full.ms),
      rerun_ms: Math.round(rerun.ms),
      runcache_ms: Math.round(restored.ms),
      noop_ms: Math.round(noop.ms),
    };
  } finally {
    await t.cleanup();
  }
}
