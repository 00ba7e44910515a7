/**
 * The serving image on Vertex AI is referenced by digest: a tag-only `endpoint.image` is a
 * one-line error before any request; the image the workflow built (LOCKSTEP_IMAGE) wins; the
 * uploaded model version carries the image and its digest labels; deployment records keep it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { imageDigestLabels, parseImageRef, pinnedImage } from '../../lib/image-ref.ts';
import { openEndpoint } from '../../lib/endpoints/open.ts';
import type { VertexEndpoint } from '../../lib/endpoints/vertex.ts';
import { recordCanaryResult } from '../../lib/canary/record.ts';
import type { ReconcileResult } from '../../lib/canary/reconcile.ts';
import { readDeployments } from '../../lib/promotion/records.ts';
import { repoAt } from '../../lib/repo.ts';
import { FakeVertex } from '../support/fake-vertex.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { commitFixtureModel } from '../support/fixture-model.ts';

const DIGEST = `sha256:${'e'.repeat(64)}`;
const REPOSITORY = 'us-docker.pkg.dev/p/serving/lockstep';

describe('image references', () => {
  it.each([
    [`${REPOSITORY}:abc123`, { repository: REPOSITORY, tag: 'abc123' }],
    [`${REPOSITORY}@${DIGEST}`, { repository: REPOSITORY, digest: DIGEST }],
    [`${REPOSITORY}:abc123@${DIGEST}`, { repository: REPOSITORY, tag: 'abc123', digest: DIGEST }],
    [`localhost:5000/lockstep@${DIGEST}`, { repository: 'localhost:5000/lockstep', digest: DIGEST }],
    ['node:20-slim', { repository: 'node', tag: '20-slim' }],
    [`${REPOSITORY}@sha256:abc`, undefined],
    ['Upper/Case', undefined],
  ] as const)('parseImageRef %s', (ref, want) => {
    expect(parseImageRef(ref)).toEqual(want);
  });

  it('pinnedImage refuses a tag-only reference in one line naming the key, and prefers the built image', () => {
    const where = 'promotion/prod.yaml: endpoint.image';
    expect(() => pinnedImage(`${REPOSITORY}:latest`, where, {})).toThrow(
      /^promotion\/prod\.yaml: endpoint\.image: image not pinned by digest "us-docker\.pkg\.dev\/p\/serving\/lockstep:latest"\. Use <repository>@sha256:<digest>[^\n]*$/,
    );
    expect(pinnedImage(`${REPOSITORY}@${DIGEST}`, where, {})).toBe(`${REPOSITORY}@${DIGEST}`);
    const built = `${REPOSITORY}@sha256:${'f'.repeat(64)}`;
    expect(pinnedImage(`${REPOSITORY}:latest`, where, { LOCKSTEP_IMAGE: built })).toBe(built);
    expect(() =>
      pinnedImage(`${REPOSITORY}@${DIGEST}`, where, { LOCKSTEP_IMAGE: `${REPOSITORY}:x` }),
    ).toThrow(/^LOCKSTEP_IMAGE: image not pinned by digest/);
  });

  it('imageDigestLabels splits the digest into two label values of at most 63 characters', () => {
    const labels = imageDigestLabels(`${REPOSITORY}@sha256:${'0123456789abcdef'.repeat(4)}`);
    expect(labels).toEqual({
      'lockstep-image-a': '0123456789abcdef'.repeat(2),
      'lockstep-image-b': '0123456789abcdef'.repeat(2),
    });
    expect(imageDigestLabels(`${REPOSITORY}:latest`)).toEqual({});
  });
});

describe('vertex deploys by digest', () => {
  let fake: FakeVertex;
  let gcs: FakeGcs;
  let tmp: string;
  const previous = { ...process.env };
  const policy = (image: string) =>
    [
      'branch: prod',
      `endpoint: { kind: vertex, project: p, region: us-central1, endpoint: "1", model: speech-emotion, image: "${image}" }`,
      'remote: gs://models-bucket/lockstep',
      '',
    ].join('\n');

  beforeEach(async () => {
    fake = await new FakeVertex().start();
    fake.addEndpoint('projects/p/locations/us-central1/endpoints/1');
    gcs = await FakeGcs.start();
    process.env.STORAGE_EMULATOR_HOST = gcs.url;
    delete process.env.LOCKSTEP_IMAGE;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-image-ref-'));
    fs.mkdirSync(path.join(tmp, 'promotion'));
  });
  afterEach(async () => {
    process.env = { ...previous };
    await fake.close();
    await gcs.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a tag-only endpoint.image fails before any Vertex AI request', async () => {
    fs.writeFileSync(path.join(tmp, 'promotion/prod.yaml'), policy(`${REPOSITORY}:latest`));
    await expect(
      openEndpoint(repoAt(tmp), 'prod', { vertexClientOptions: fake.clientOptions() }),
    ).rejects.toThrow(/^promotion\/prod\.yaml: endpoint\.image: image not pinned by digest ".*:latest"\./);
    expect(fake.requests).toEqual([]);
  });

  it('the built image (LOCKSTEP_IMAGE) is uploaded by digest with its digest labels and recorded with the deployment', async () => {
    const built = `${REPOSITORY}@sha256:${'c'.repeat(64)}`;
    process.env.LOCKSTEP_IMAGE = built;
    fs.writeFileSync(path.join(tmp, 'promotion/prod.yaml'), policy(`${REPOSITORY}:latest`));
    const repo = repoAt(tmp);
    const model = await commitFixtureModel(repo);
    const { endpoint, image } = await openEndpoint(repo, 'prod', {
      vertexClientOptions: fake.clientOptions(),
    });
    try {
      await endpoint.deploy(model, 100);
    } finally {
      await (endpoint as VertexEndpoint).close();
    }
    expect(image).toBe(built);
    const [version] = fake.models.get('projects/p/locations/us-central1/models/speech-emotion')!;
    expect(version.containerSpec!.imageUri).toBe(built);
    expect(version.labels).toMatchObject({
      'lockstep-image-a': 'c'.repeat(32),
      'lockstep-image-b': 'c'.repeat(32),
    });
    expect(fake.rejected).toEqual([]);

    const result = {
      action: 'start',
      status: { candidateHash: model.hash, stepIndex: 0 },
      reason: 'canary started at 10%',
    } as unknown as ReconcileResult;
    await recordCanaryResult(repo, result, { env: 'prod', commit: 'a'.repeat(40), percent: 10, image });
    expect((await readDeployments(repo, 'prod')).map((r) => [r.status, r.image])).toEqual([
      ['canary_started', built],
    ]);
  });
});
