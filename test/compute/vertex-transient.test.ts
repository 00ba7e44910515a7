/**
 * A 503 on one upload of a Vertex AI stage's inputs (an input object, the job spec, the claim)
 * is retried: writes to the remote's job files were not, and one 503 on the spec or the claim
 * failed the stage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, createComputeRepo, removeRepo, startWorld, type ComputeWorld } from './setup.ts';

const CONFIG = 'compute:\n  stages:\n    featurize: { backend: vertex }\n';
let world: ComputeWorld;
const repos: string[] = [];
beforeAll(async () => {
  world = await startWorld('bkt');
}, 30_000);
afterAll(async () => {
  await world?.close();
  await Promise.all(repos.map(removeRepo));
});

describe('a transient error on an upload of the inputs', () => {
  it.each(['spec.json', 'sha256/', 'job.json'])(
    'a 503 on %s is retried',
    async (name) => {
      const dir = await createComputeRepo(CONFIG);
      repos.push(dir);
      process.env.LOCKSTEP_REMOTE = `gs://bkt/transient-${name.replace(/\W/g, '')}`;
      const cancels = world.jobs.count('cancel');
      world.gcs.inject({ kind: 'upload', nameIncludes: name, status: 503, times: 1 });
      try {
        const r = await cli(dir, 'repro', 'featurize');
        expect(r.code, r.err).toBe(0);
        expect(world.jobs.count('cancel')).toBe(cancels);
      } finally {
        world.gcs.clearFaults();
      }
    },
    120_000,
  );
});
