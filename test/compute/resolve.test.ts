import { afterEach, describe, expect, it } from 'vitest';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';
import { resolveCompute } from '../../lib/compute/resolve.ts';
import { toOneLine } from '../../lib/errors.ts';
import type { StageDef } from '../../lib/types.ts';
import { replicaFromClusterSpec } from '../../lib/compute/cluster-spec.ts';

const stages = [
  { name: 'featurize', shards: { run: async () => {}, merge: async () => {} } },
  { name: 'train' },
] as unknown as StageDef[];

const ENV = ['LOCKSTEP_REMOTE', 'LOCKSTEP_IMAGE', 'LOCKSTEP_VERTEX_PROJECT', 'LOCKSTEP_VERTEX_REGION'];
let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
  for (const k of ENV) delete process.env[k];
});

async function resolveWith(config: string, override?: string): Promise<string> {
  t = await createTmpRepo({ '.lockstep/config.yaml': config });
  try {
    const plan = resolveCompute(t.repo, stages, override);
    return JSON.stringify({ stages: Object.fromEntries(plan.stages), vertex: plan.vertex });
  } catch (err) {
    return `error: ${toOneLine(err)}`;
  }
}

const VERTEX = `remote: r\nremotes: { r: { url: gs://b/p } }\ncompute:\n  project: p\n  region: us-central1\n  image: img@sha256:${'ab'.repeat(32)}\n  stages:\n`;

describe('resolveCompute', () => {
  it.each([
    [
      'a bad machine type',
      `${VERTEX}    train: { backend: vertex, machine_type: n1-superfast-8 }\n`,
      /^error: \.lockstep\/config\.yaml:\d+: compute\.stages\.train\.machine_type: unknown machine type\. Use a Compute Engine machine type such as n1-standard-8/,
    ],
    [
      'a missing image',
      'remote: r\nremotes: { r: { url: gs://b/p } }\ncompute:\n  project: p\n  region: r\n  stages:\n    train: { backend: vertex }\n',
      /^error: \.lockstep\/config\.yaml: compute\.image: missing for stages on vertex "". Set compute\.image or LOCKSTEP_IMAGE/,
    ],
    [
      'a non-gs remote',
      'remote: r\nremotes: { r: { url: ./store } }\ncompute:\n  stages:\n    train: { backend: vertex }\n',
      /^error: \.lockstep\/config\.yaml: remote: stages on vertex need a gs:\/\/ remote/,
    ],
    [
      'replicas on a stage that does not shard',
      `${VERTEX}    train: { backend: vertex, replicas: 4 }\n`,
      /^error: \.lockstep\/config\.yaml: compute\.stages\.train\.replicas: this stage does not shard "4"\. Set replicas: 1/,
    ],
    [
      'an unknown stage',
      `${VERTEX}    trian: { backend: vertex }\n`,
      /^error: \.lockstep\/config\.yaml: compute\.stages\.trian: names no stage of the pipeline "trian"\. Use one of: featurize, train\.$/,
    ],
    [
      'an unknown accelerator',
      `${VERTEX}    train: { backend: vertex, accelerator: { type: GTX_1080 } }\n`,
      /^error: .*compute\.stages\.train\.accelerator\.type/,
    ],
    [
      'an accelerator that does not attach to the default machine type',
      `${VERTEX}    train: { backend: vertex, accelerator: { type: NVIDIA_TESLA_A100 } }\n`,
      /^error: \.lockstep\/config\.yaml: compute\.stages\.train\.machine_type: accelerator NVIDIA_TESLA_A100 does not attach to this machine type \(the default\) "n1-standard-4"\. Set machine_type to a machine type it attaches to \(a2-highgpu, a2-megagpu\), e\.g\. a2-highgpu-1g\.$/,
    ],
    [
      'a TPU on an n1 machine',
      `${VERTEX}    train: { backend: vertex, machine_type: n1-standard-8, accelerator: { type: TPU_V3, count: 8 } }\n`,
      /^error: .*compute\.stages\.train\.machine_type: accelerator TPU_V3 does not attach to this machine type "n1-standard-8"\. .* e\.g\. cloud-tpu\.$/,
    ],
    [
      'replicas 0',
      `${VERTEX}    featurize: { backend: vertex, replicas: 0 }\n`,
      /^error: .*compute\.stages\.featurize\.replicas/,
    ],
    [
      'replicas 1000',
      `${VERTEX}    featurize: { backend: vertex, replicas: 1000 }\n`,
      /^error: .*compute\.stages\.featurize\.replicas/,
    ],
    [
      'a negative timeout',
      `${VERTEX}    train: { backend: vertex, timeout: -5 }\n`,
      /^error: .*compute\.stages\.train\.timeout/,
    ],
  ])('resolveCompute rejects %s with one line naming the key', async (_name, config, pattern) => {
    expect(await resolveWith(config)).toMatch(pattern);
  });

  it('resolveCompute resolves per stage, and --compute local overrides every stage', async () => {
    const config = `${VERTEX}    featurize: { backend: vertex, replicas: 3 }\n    train: { backend: vertex, machine_type: a2-highgpu-1g, accelerator: { type: NVIDIA_TESLA_A100 } }\n`;
    const plan = JSON.parse(await resolveWith(config));
    expect(plan.stages.featurize).toMatchObject({
      backend: 'vertex',
      replicas: 3,
      machineType: 'n1-standard-4',
    });
    expect(plan.stages.train).toMatchObject({
      machineType: 'a2-highgpu-1g',
      accelerator: { type: 'NVIDIA_TESLA_A100', count: 1 },
    });
    expect(plan.vertex).toEqual({
      project: 'p',
      region: 'us-central1',
      image: `img@sha256:${'ab'.repeat(32)}`,
      remote: 'gs://b/p',
    });
    await t!.cleanup();
    const local = JSON.parse(await resolveWith(config, 'local'));
    expect(Object.values(local.stages).map((s) => (s as { backend: string }).backend)).toEqual([
      'local',
      'local',
    ]);
    expect(local.vertex).toBeUndefined();
    await t!.cleanup();
    expect(await resolveWith(config, 'gpu')).toMatch(
      /^error: --compute: unknown backend "gpu"\. Use --compute local or --compute vertex\.$/,
    );
  });
  it('resolveCompute refuses an image without a digest, from config or LOCKSTEP_IMAGE', async () => {
    const tagged = VERTEX.replace(/image: .*\n/, 'image: us-docker.pkg.dev/p/r/lockstep:latest\n');
    const config = `${tagged}    train: { backend: vertex }\n`;
    expect(await resolveWith(config)).toMatch(
      /^error: \.lockstep\/config\.yaml: compute\.image: image not pinned by digest "us-docker\.pkg\.dev\/p\/r\/lockstep:latest"\. Use <repository>@sha256:<digest>/,
    );
    await t!.cleanup();
    process.env.LOCKSTEP_IMAGE = 'img:v1';
    expect(await resolveWith(`${VERTEX}    train: { backend: vertex }\n`)).toMatch(
      /^error: LOCKSTEP_IMAGE: image not pinned by digest "img:v1"/,
    );
    await t!.cleanup();
    // An empty variable (a repository variable that is not set) leaves compute.image in charge.
    process.env.LOCKSTEP_IMAGE = '';
    const plan = JSON.parse(await resolveWith(`${VERTEX}    train: { backend: vertex }\n`));
    expect(plan.vertex.image).toBe(`img@sha256:${'ab'.repeat(32)}`);
  });
});

describe('replicaFromClusterSpec', () => {
  const spec = (type: string, index: number) =>
    JSON.stringify({
      cluster: { workerpool0: ['a:2222'], workerpool1: ['b:2222', 'c:2222'] },
      environment: 'cloud',
      task: { type, index },
    });
  it.each([
    [undefined, 'workerpool0-0', 0],
    [spec('workerpool0', 0), 'workerpool0-0', 0],
    [spec('workerpool1', 0), 'workerpool1-0', 1],
    [spec('workerpool1', 1), 'workerpool1-1', 2],
  ])('replicaFromClusterSpec %s is shard %s', (text, name, index) => {
    expect(replicaFromClusterSpec(text)).toEqual({ name, index });
  });
  it('replicaFromClusterSpec rejects a parameter server task', () => {
    expect(() => replicaFromClusterSpec(spec('workerpool2', 0))).toThrow(
      /task type "workerpool2" computes no shard/,
    );
  });
});
