import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeRegistryRepo, type RegistryRepo } from '../promotion/fixture.ts';
import { FakeVertex } from '../support/fake-vertex.ts';
import { VertexEndpoint, type VertexTarget } from '../../lib/endpoints/vertex.ts';
import {
  EnvironmentMirror,
  checkVertexRegistry,
  mirrorEnvironment,
  versionMetadataOf,
} from '../../lib/endpoints/vertex-mirror.ts';
import { planPromotion, promoteLocal } from '../../lib/promotion/promote.ts';
import { planRollback, rollbackLocal } from '../../lib/promotion/rollback.ts';
import { reconcileCanary } from '../../lib/canary/reconcile.ts';
import type { PredictionLogEntry } from '../../lib/serving/logs.ts';
import type { ArtifactRef } from '../../lib/types.ts';

const MODEL = 'projects/p/locations/us-central1/models/speech-emotion';
/** Vertex deploys take only digest-pinned images. */
const IMAGE = `us-docker.pkg.dev/p/serving/lockstep@sha256:${'ab'.repeat(32)}`;
const LABELS = ['angry', 'happy', 'sad'];
const target = (endpoint: string): VertexTarget => ({
  kind: 'vertex',
  project: 'p',
  region: 'us-central1',
  endpoint,
  model: 'speech-emotion',
  machine_type: 'n1-standard-2',
  min_replicas: 1,
  max_replicas: 1,
  image: IMAGE,
});
const ENDPOINT_ID: Record<string, string> = { dev: '1', staging: '2', prod: '3' };

let fake: FakeVertex;
let r: RegistryRepo;

/** Every environment on Vertex AI, sharing one parent model (one alias per environment). */
async function useVertexPolicies(dir: string): Promise<void> {
  for (const env of ['dev', 'staging', 'prod']) {
    const file = path.join(dir, 'promotion', `${env}.yaml`);
    const text = (await readFile(file, 'utf8')).replace(
      /endpoint:\n {2}kind: local\n/,
      `endpoint: { kind: vertex, project: p, region: us-central1, endpoint: "${ENDPOINT_ID[env]}", model: speech-emotion, image: "${IMAGE}" }\n`,
    );
    if (!text.includes('kind: vertex')) throw new Error(`${file}: endpoint not replaced`);
    await writeFile(file, text);
  }
}

/** Uploads `model` as the deploy would (the fake never reads the staged files). */
async function upload(model: ArtifactRef, commit: string): Promise<string> {
  const ep = new VertexEndpoint(target('1'), {
    clientOptions: fake.clientOptions(),
    stageModel: async (m) => `gs://bucket/serving/${m.hash}`,
    versionMetadata: (m) => versionMetadataOf(r.repo, m),
    pollInitialMs: 5,
  });
  try {
    return (await ep.ensureModelVersion({ ...model, commit })).versionId;
  } finally {
    await ep.close();
  }
}

const opts = () => ({ vertexClientOptions: fake.clientOptions() });
const aliasesOf = () =>
  Object.fromEntries((fake.models.get(MODEL) ?? []).map((v) => [v.versionId, [...v.versionAliases].sort()]));
const headOf = async (branch: string) => (await r.git.revparse([branch])).trim();

async function commitModel(content: string, accuracy: number) {
  return r.commitModel({
    content,
    metrics: { accuracy, f1_macro: accuracy, precision_macro: accuracy, recall_macro: accuracy, mcc: 0.6 },
    confusion: {
      labels: LABELS,
      matrix: [
        [5, 1, 0],
        [0, 6, 0],
        [1, 0, 5],
      ],
    },
    evalExtra: { slices: [{ dimension: 'speaker', value: 'oaf', metrics: { accuracy: 0.8 } }] },
  });
}

async function promote(env: string) {
  const plan = await planPromotion(r.repo, env, { local: true });
  const mirror = await EnvironmentMirror.open(r.repo, env, opts());
  try {
    return await promoteLocal(r.repo, plan, { mirror });
  } finally {
    await mirror?.close();
  }
}

beforeEach(async () => {
  fake = await new FakeVertex({ maxPageSize: 1 }).start();
  for (const id of Object.values(ENDPOINT_ID))
    fake.addEndpoint(`projects/p/locations/us-central1/endpoints/${id}`);
  r = await makeRegistryRepo();
  await useVertexPolicies(r.dir);
  await r.git.add('promotion');
  await r.git.commit('environments on Vertex AI');
});
afterEach(async () => {
  await fake.close();
  await r.cleanup();
});

// Real git, real clients, many round trips: generous bounds for a loaded machine.
describe('vertex model registry', { timeout: 240_000 }, () => {
  it('vertex registry aliases move in lock-step with promotion and rollback; a failed promotion moves none', async () => {
    const a = await commitModel('model a', 0.8);
    const va = await upload(a.model, a.commit);
    const version = fake.models.get(MODEL)![0]!;
    expect(version.labels).toMatchObject({
      'lockstep-commit': a.commit,
      'lockstep-gate': 'passed',
      'lockstep-hash-a': a.model.hash.slice(0, 32),
    });
    expect(version.versionDescription).toContain(`from commit ${a.commit}`);

    expect((await mirrorEnvironment(r.repo, 'dev', opts()))!.line).toMatch(/^dev: moved dev to .*@1 /);
    // The evaluation: classification schema, confusion matrix rows as {row}, and its slice.
    const [ev] = fake.evaluations.get(`${MODEL}@${va}`)!;
    expect(ev!.metrics).toMatchObject({
      confidenceMetrics: [{ precision: 0.8, recall: 0.8, f1ScoreMacro: 0.8, precisionAt1: 0.8 }],
      confusionMatrix: {
        annotationSpecs: LABELS.map((l) => ({ id: l, displayName: l })),
        rows: [{ row: [5, 1, 0] }, { row: [0, 6, 0] }, { row: [1, 0, 5] }],
      },
    });
    expect(
      ev!.slices.map((s) => [s.slice, (s.metrics as { confidenceMetrics: unknown[] }).confidenceMetrics]),
    ).toEqual([
      [
        { dimension: 'speaker', value: 'oaf' },
        [
          {
            confidenceThreshold: 0,
            maxPredictions: 1,
            precisionAt1: 0.8,
            recallAt1: 0.8,
            f1ScoreAt1: 0.8,
            f1ScoreMicro: 0.8,
          },
        ],
      ],
    ]);

    await promote('staging');
    await promote('prod');
    expect(aliasesOf()).toEqual({
      '1': ['default', 'dev', 'h-' + a.model.hash.slice(0, 12), 'prod', 'staging'],
    });

    const b = await commitModel('model b', 0.85);
    const vb = await upload(b.model, b.commit);
    await mirrorEnvironment(r.repo, 'dev', opts());
    await promote('staging');
    const hb = 'h-' + b.model.hash.slice(0, 12);
    const ha = 'h-' + a.model.hash.slice(0, 12);
    expect(aliasesOf()).toEqual({ [va]: ['default', ha, 'prod'], [vb]: ['dev', hb, 'staging'] });

    // A 403 from mergeVersionAliases: one line naming the model and the fix; git and Vertex unchanged.
    const prodBefore = await headOf('prod');
    fake.faults.set('mergeVersionAliases', 403);
    const err = await promote('prod').catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^${MODEL}: vertex mergeVersionAliases prod,default on version ${vb}: .*injected fault.*\\. Give the service account roles/aiplatform.user`,
      ),
    );
    expect((err as Error).message).not.toContain('\n');
    expect(await headOf('prod')).toBe(prodBefore);
    expect(aliasesOf()).toEqual({ [va]: ['default', ha, 'prod'], [vb]: ['dev', hb, 'staging'] });

    // The branch move fails after the aliases moved: they are put back.
    await writeFile(path.join(r.dir, '.git', 'refs', 'heads', 'prod.lock'), '');
    await expect(promote('prod')).rejects.toThrow(/^promote prod: moving prod to staging failed/);
    expect(await headOf('prod')).toBe(prodBefore);
    expect(aliasesOf()).toEqual({ [va]: ['default', ha, 'prod'], [vb]: ['dev', hb, 'staging'] });

    // ...and when putting them back is refused too, the error says the registry is ahead of git.
    const inner = await EnvironmentMirror.open(r.repo, 'prod', opts());
    const refusesUndo = {
      moveTo: async (model: ArtifactRef, commit: string) => {
        const moved = await inner!.moveTo(model, commit);
        fake.faults.set('mergeVersionAliases', 403);
        return moved;
      },
    };
    const stuck = await promoteLocal(r.repo, await planPromotion(r.repo, 'prod', { local: true }), {
      mirror: refusesUndo,
    }).catch((e: Error) => e);
    await inner!.close();
    expect((stuck as Error).message).toMatch(
      /^promote prod: moving prod to staging failed \(.*\)\. The Vertex AI aliases could not be put back \(.*mergeVersionAliases.*\): run lockstep registry check --vertex --fix\. Check the branch/,
    );
    expect((stuck as Error).message).not.toContain('\n');
    expect(await headOf('prod')).toBe(prodBefore);
    expect((await checkVertexRegistry(r.repo, opts())).drift).toHaveLength(2);
    await rm(path.join(r.dir, '.git', 'refs', 'heads', 'prod.lock'));

    await promote('prod');
    expect(aliasesOf()).toEqual({ [va]: [ha], [vb]: ['default', 'dev', hb, 'prod', 'staging'] });
    expect((await checkVertexRegistry(r.repo, opts())).drift).toEqual([]);

    // A refused alias move fails the rollback with nothing left behind: no branch, no alias.
    const prodHead = await headOf('prod');
    fake.faults.set('mergeVersionAliases', 403);
    const refused = await EnvironmentMirror.open(r.repo, 'prod', opts());
    await expect(
      rollbackLocal(r.repo, await planRollback(r.repo, 'prod'), { mirror: refused }),
    ).rejects.toThrow(/vertex mergeVersionAliases/);
    await refused!.close();
    expect(await headOf('prod')).toBe(prodHead);
    expect((await r.git.branchLocal()).all.filter((b) => b.startsWith('rollback/'))).toEqual([]);
    expect(aliasesOf()).toEqual({ [va]: [ha], [vb]: ['default', 'dev', hb, 'prod', 'staging'] });

    // Rollback: the branch and the aliases go back to model a together.
    const mirror = await EnvironmentMirror.open(r.repo, 'prod', opts());
    await rollbackLocal(r.repo, await planRollback(r.repo, 'prod'), { mirror });
    await mirror!.close();
    expect(aliasesOf()).toEqual({ [va]: ['default', ha, 'prod'], [vb]: ['dev', hb, 'staging'] });
    expect((await checkVertexRegistry(r.repo, opts())).drift).toEqual([]);

    // Promoting again after the rollback: the aliases follow the branch forward once more.
    await promote('prod');
    expect(aliasesOf()).toEqual({ [va]: [ha], [vb]: ['default', 'dev', hb, 'prod', 'staging'] });
    expect((await checkVertexRegistry(r.repo, opts())).drift).toEqual([]);
    expect(fake.models.get(MODEL)).toHaveLength(2);
    expect(fake.rejected).toEqual([]);
  });

  it('vertex registry check reports every drift one line each and --fix repairs it from git', async () => {
    const a = await commitModel('model a', 0.8);
    const va = await upload(a.model, a.commit);
    await mirrorEnvironment(r.repo, 'dev', opts());
    await promote('staging');
    const b = await commitModel('model b', 0.85);
    const vb = await upload(b.model, b.commit); // uploaded, never evaluated or aliased
    // Someone moves staging by hand in the console.
    fake.models.get(MODEL)!.find((v) => v.versionId === va)!.versionAliases = [
      'default',
      'h-' + a.model.hash.slice(0, 12),
    ];
    fake.models
      .get(MODEL)!
      .find((v) => v.versionId === vb)!
      .versionAliases.push('staging');

    const check = await checkVertexRegistry(r.repo, opts());
    const hb = b.model.hash.slice(0, 12);
    const ha = a.model.hash.slice(0, 12);
    expect(check.drift).toEqual([
      `dev: alias "dev" is on no version of ${MODEL}; dev pins model "${hb}". Run lockstep registry check --vertex --fix.`,
      `staging: alias "staging" is on version ${vb} (model ${hb}), but staging pins model "${ha}". Run lockstep registry check --vertex --fix.`,
      `${MODEL}@${vb}: no model evaluation for model "${hb}". Run lockstep registry check --vertex --fix.`,
    ]);
    expect(check.fixed).toEqual([]);

    const fixed = await checkVertexRegistry(r.repo, { ...opts(), fix: true });
    expect(fixed.fixed).toHaveLength(2);
    expect((await checkVertexRegistry(r.repo, opts())).drift).toEqual([]);
    expect(aliasesOf()).toEqual({
      [va]: ['default', 'h-' + ha, 'staging'],
      [vb]: ['dev', 'h-' + hb],
    });
    expect(fake.evaluations.get(`${MODEL}@${vb}`)).toHaveLength(1);

    // A missing version is a drift too; without a way to stage files the fix says so in one line.
    fake.models.clear();
    fake.evaluations.clear();
    const missing = await checkVertexRegistry(r.repo, { ...opts(), envs: ['dev'] });
    expect(missing.drift[0]).toBe(
      `dev: no version of ${MODEL} holds the model dev pins "${hb}". Run lockstep registry check --vertex --fix.`,
    );
    await expect(checkVertexRegistry(r.repo, { ...opts(), envs: ['dev'], fix: true })).rejects.toThrow(
      /^promotion\/dev\.yaml: remote: no gs:\/\/ location to stage model files for Vertex AI "[^"]*"\. Set remote: gs:\/\/bucket\/prefix\.$/,
    );
    expect(fake.models.size).toBe(0);
  });

  it('vertex registry check on environments not served on Vertex AI is a usage error, not agreement', async () => {
    await expect(checkVertexRegistry(r.repo, { ...opts(), envs: ['prdo'] })).rejects.toThrow(
      /^--env: not served on Vertex AI "prdo"\. Set endpoint\.kind: vertex/,
    );
    for (const env of ['dev', 'staging', 'prod']) {
      const file = path.join(r.dir, 'promotion', `${env}.yaml`);
      await writeFile(
        file,
        (await readFile(file, 'utf8')).replace(
          /endpoint: \{ kind: vertex[^\n]*\n/,
          'endpoint:\n  kind: local\n',
        ),
      );
    }
    await expect(checkVertexRegistry(r.repo, opts())).rejects.toThrow(
      /^promotion\/<env>\.yaml: no environment is served on Vertex AI "dev, staging, prod"\./,
    );
    expect(fake.models.size).toBe(0);
  });

  it('vertex registry canary completion after a merged promotion moves the alias to the candidate', async () => {
    const a = await commitModel('model a', 0.8);
    await upload(a.model, a.commit);
    await mirrorEnvironment(r.repo, 'dev', opts());
    const ep = new VertexEndpoint(target('1'), {
      clientOptions: fake.clientOptions(),
      stageModel: async (m) => `gs://bucket/serving/${m.hash}`,
      versionMetadata: (m) => versionMetadataOf(r.repo, m),
      pollInitialMs: 5,
    });
    const logs: PredictionLogEntry[] = [];
    const run = (model: ArtifactRef, commit: string) =>
      reconcileCanary({
        endpoint: ep,
        desired: { ...model, commit },
        steps: [10, 100],
        analysis: { max_error_rate: 0.01, max_p99_ms: 100, max_divergence: 0.2, min_requests: 5 },
        readLogs: (since) => logs.filter((l) => Date.parse(l.time) >= since.getTime()),
      });
    try {
      expect((await run(a.model, a.commit)).action).toBe('deploy');
      // A merged pull request moves dev to model b; the deploy's canary starts, then completes.
      const b = await commitModel('model b', 0.85);
      expect((await run(b.model, b.commit)).action).toBe('start');
      const split = fake.endpoints.get('projects/p/locations/us-central1/endpoints/1')!.trafficSplit;
      const [stable, canary] = Object.keys(split).sort((x, y) => split[y]! - split[x]!);
      const time = new Date(Date.now() + 1000).toISOString();
      // Enough canary requests for the analysis' power to call it (a few hundred each way).
      for (let i = 0; i < 1500; i++)
        logs.push({
          time,
          env: 'dev',
          deployedModelId: i < 500 ? canary! : stable!,
          status: 'ok',
          label: 'happy',
          latencyMs: 3,
        });
      const done = await run(b.model, b.commit);
      expect(done.action, JSON.stringify(done)).toBe('complete');
      const moved = await mirrorEnvironment(r.repo, 'dev', opts());
      expect(moved!.line).toMatch(/^dev: moved dev to .*@2 /);
      expect(aliasesOf()['2']).toContain('dev');
      expect((await checkVertexRegistry(r.repo, opts())).drift).toEqual([]);
    } finally {
      await ep.close();
    }
  });

  it('vertex registry a model whose hash shares its first 12 characters with another gets its own version', async () => {
    const a: ArtifactRef = {
      path: 'out/model',
      hash: 'abcdef012345' + '1'.repeat(52),
      size: 1,
      nfiles: 1,
      dir: true,
    };
    const b: ArtifactRef = { ...a, hash: 'abcdef012345' + '2'.repeat(52) };
    const ep = new VertexEndpoint(target('1'), {
      clientOptions: fake.clientOptions(),
      stageModel: async (m) => `gs://bucket/serving/${m.hash}`,
      pollInitialMs: 5,
    });
    try {
      const va = (await ep.ensureModelVersion(a)).versionId;
      const vb = (await ep.ensureModelVersion(b)).versionId;
      expect(vb).not.toBe(va);
      // Uploaded once per hash: asking again finds each model's own version.
      expect((await ep.ensureModelVersion(a)).versionId).toBe(va);
      expect((await ep.ensureModelVersion(b)).versionId).toBe(vb);
      expect(fake.models.get(MODEL)).toHaveLength(2);
      expect(aliasesOf()[vb]).toContain(`h-${b.hash}`);
    } finally {
      await ep.close();
    }
  });

  it('vertex registry fake rejects what the real API rejects', async () => {
    const a = await commitModel('model a', 0.8);
    const va = await upload(a.model, a.commit);
    const post = (p: string, body: unknown) =>
      fetch(`http://127.0.0.1:${fake.port}/v1/${p}`, { method: 'POST', body: JSON.stringify(body) });
    const schema = 'gs://google-cloud-aiplatform/schema/modelevaluation/classification_metrics_1.0.0.yaml';
    const cases: [string, unknown][] = [
      [`${MODEL}@${va}:mergeVersionAliases`, { versionAliases: ['-default'] }],
      [`${MODEL}@${va}:mergeVersionAliases`, { versionAliases: ['Prod'] }],
      [`${MODEL}@${va}:mergeVersionAliases`, { versionAliases: ['123'] }],
      [`${MODEL}@default:mergeVersionAliases`, { versionAliases: ['prod'] }],
      // The array-of-arrays confusion matrix of googleapis/python-aiplatform#5570.
      [
        `${MODEL}@${va}/evaluations:import`,
        {
          modelEvaluation: {
            metricsSchemaUri: schema,
            metrics: {
              confusionMatrix: {
                annotationSpecs: [{ id: 'a' }, { id: 'b' }],
                rows: [
                  [1, 0],
                  [0, 1],
                ],
              },
            },
          },
        },
      ],
      [
        `${MODEL}@${va}/evaluations:import`,
        { modelEvaluation: { metricsSchemaUri: schema, metrics: { accuracy: 1 } } },
      ],
      [`${MODEL}@${va}/evaluations:import`, { modelEvaluation: { metrics: {}, bogus: 1 } }],
    ];
    for (const [p, body] of cases) expect((await post(p, body)).status).toBe(400);
    expect(fake.rejected.map((x) => x.replace(/^\S+ \S+: /, ''))).toEqual([
      'version_aliases: the default alias cannot be removed; add it to another version to move it',
      'version_aliases: version alias "Prod" must match [a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]',
      'version_aliases: version alias "123" must match [a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]',
      `MergeVersionAliases: name must include an explicit version id "${MODEL}@default"`,
      'Invalid Metrics Format: metrics.confusionMatrix.rows[0]: expected {row: [counts]}',
      'Invalid Metrics Format: metrics.accuracy: unknown field',
      'Invalid JSON payload: ImportModelEvaluationRequest.modelEvaluation.bogus: unknown field of google.cloud.aiplatform.v1.ModelEvaluation',
    ]);
  });
});
