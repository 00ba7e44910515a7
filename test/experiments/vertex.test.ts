import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { vertexClientDefaults, experimentLogger, contextId } from '../../lib/experiments/vertex.ts';
import { FakeVertex } from '../support/fake-vertex.ts';
import {
  fakeMetadataState,
  metadataRoutes,
  type FakeMetadataState,
} from '../support/fake-vertex-metadata.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { cliIn, createExperimentRepo, PIPE } from './helpers.ts';

const STORE = 'projects/p/locations/us-central1/metadataStores/default';
const PARAMS = '# tuned by hand\ndata:\n  seed: 1\ntrain:\n  lr: 0.01 # learning rate\n  epochs: 3\n';

let fake: FakeVertex;
let state: FakeMetadataState;
let t: TmpRepo | undefined;

beforeAll(async () => {
  fake = await new FakeVertex().start();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  state = fakeMetadataState();
  fake.routes.length = 0;
  fake.use(metadataRoutes(state));
  vertexClientDefaults.options = fake.clientOptions();
});
afterEach(async () => {
  vertexClientDefaults.options = undefined;
  await t?.cleanup();
  t = undefined;
});

describe('vertex experiments', () => {
  it('logger creates the store, the experiment and a run with params, metrics and curves; a rerun updates it', async () => {
    const logger = experimentLogger({ project: 'p', region: 'us-central1', experiment: 'emotion' })!;
    const name = await logger.logRun({
      run: 'commit-0123456789ab',
      params: { 'train.lr': 0.01, 'train.arch': 'mlp' },
      metrics: { accuracy: 0.5 },
      curves: { loss: [1.2, 0.8, 0.6], val_accuracy: [0.3, 0.4, 0.5] },
    });
    expect(name).toBe(`${STORE}/contexts/emotion-commit-0123456789ab`);
    await logger.logRun({ run: 'commit-0123456789ab', params: { 'train.lr': 0.01 }, metrics: { f1: 0.4 } });
    await logger.close();
    expect(fake.rejected).toEqual([]);
    expect(state.stores.has(STORE)).toBe(true);
    const exp = state.contexts.get(`${STORE}/contexts/emotion`)!;
    expect(exp.schemaTitle).toBe('system.Experiment');
    expect(exp.metadata).toEqual({ experiment_deleted: false });
    expect(exp.children).toEqual([name]);
    const run = state.contexts.get(name)!;
    expect(run.schemaTitle).toBe('system.ExperimentRun');
    expect(run.displayName).toBe('commit-0123456789ab');
    expect(run.metadata).toEqual({
      _params: { 'train.lr': 0.01, 'train.arch': 'mlp' },
      _metrics: { accuracy: 0.5, f1: 0.4 },
      _state: 'COMPLETE',
    });
    const curves = state.artifacts.get(`${STORE}/artifacts/emotion-commit-0123456789ab-curves`)!;
    expect(curves.schemaTitle).toBe('system.Metrics');
    expect(curves.metadata).toEqual({ epochs: 3, loss: [1.2, 0.8, 0.6], val_accuracy: [0.3, 0.4, 0.5] });
    expect(run.artifacts).toEqual([curves.name]);
  });

  it('contextId keeps names the console accepts', () => {
    expect(contextId('Emotion_Exp lr=0.02')).toBe('emotion-exp-lr-0-02');
    expect(contextId('x'.repeat(200))).toHaveLength(128);
    expect(contextId('x'.repeat(200))).toMatch(/^[a-z0-9][a-z0-9-]{0,127}$/);
    // Past 128 characters names stay apart: two tune trials of a long study in a 64-character
    // experiment (the longest the config takes) would otherwise write one run.
    const exp = 'e'.repeat(64);
    const logger = experimentLogger({ project: 'p', region: 'us-central1', experiment: exp })!;
    try {
      const study = 's'.repeat(60);
      const ids = [exp, logger.runId(`tune-${study}-001`), logger.runId(`tune-${study}-002`)];
      expect(new Set(ids).size).toBe(3);
      for (const id of ids) expect(id).toMatch(/^[a-z0-9][a-z0-9-]{0,127}$/);
    } finally {
      void logger.close();
    }
  });

  it('repro and exp run become runs named as exp show names them; offline nothing is called', async () => {
    t = await createExperimentRepo(PARAMS);
    // No vertex config: a run calls nothing.
    expect((await cliIn(t.root, 'repro', '--force', ...PIPE)).code).toBe(0);
    expect(state.calls).toEqual([]);
    t.write('.lockstep/config.yaml', 'vertex:\n  project: p\n  experiment: emotion\n');
    const r = await cliIn(t.root, 'repro', '--force', ...PIPE);
    expect(r.code, r.err).toBe(0);
    const head = t.git('rev-parse', 'HEAD');
    const pipelineRun = state.contexts.get(`${STORE}/contexts/emotion-commit-${head.slice(0, 12)}`)!;
    expect(pipelineRun.metadata._params).toMatchObject({ 'train.lr': 0.01, 'train.epochs': 3 });
    const exp = await cliIn(
      t.root,
      'exp',
      'run',
      '-S',
      'train.lr=0.02',
      '--name',
      'lr-02',
      ...PIPE,
      '--json',
    );
    expect(exp.code, exp.err).toBe(0);
    const result = JSON.parse(exp.out);
    const run = state.contexts.get(`${STORE}/contexts/emotion-lr-02`)!;
    expect(run.displayName).toBe('lr-02');
    expect(run.metadata._params).toMatchObject({ 'train.lr': 0.02 });
    expect(run.metadata._metrics).toEqual(result.metrics);
    // The exp's own pipeline child logged nothing under a commit name.
    expect([...state.contexts.keys()].sort()).toEqual(
      [`${STORE}/contexts/emotion`, pipelineRun.name, run.name].sort(),
    );
    const show = JSON.parse((await cliIn(t.root, 'exp', 'show', '--json')).out);
    const names = show.rows.map((row: { name: string }) => row.name);
    expect(names).toContain('lr-02');
    expect(fake.rejected).toEqual([]);
  });

  it('a 403 is one line naming vertex and the fix; the run still succeeds', async () => {
    t = await createExperimentRepo(PARAMS);
    t.write('.lockstep/config.yaml', 'vertex:\n  project: p\n  experiment: emotion\n');
    state.faults.set('getMetadataStore', 403);
    const r = await cliIn(t.root, 'repro', '--force', ...PIPE);
    expect(r.code).toBe(0);
    const line = r.err.split('\n').find((l) => l.includes('Vertex AI Experiments'))!;
    expect(line).toMatch(
      /^\.lockstep\/config\.yaml: vertex: Vertex AI Experiments getMetadataStore failed ".*". Grant the caller roles\/aiplatform\.user/,
    );
    expect(state.contexts.size).toBe(0);
    expect(t.git('status', '--porcelain')).toBe('');
  });
});
