import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { stageModelToGcs } from '../../lib/endpoints/stage-model.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { commitFixtureModel } from '../support/fixture-model.ts';

let tmp: string;
let repo: Repo;
let gcs: FakeGcs;

beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-stage-'));
  repo = repoAt(tmp);
  gcs = await FakeGcs.start();
});
afterEach(async () => {
  await gcs.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('model staging for Vertex AI', () => {
  it('model staging uploads the model directory once under <remote>/serving/<hash>', async () => {
    const ref = await commitFixtureModel(repo, { tag: 'stage' });
    const storageOptions = { apiEndpoint: gcs.url, projectId: 'p' };
    const uri = await stageModelToGcs(repo, ref, 'gs://models-bucket/lockstep/', { storageOptions });
    expect(uri).toBe(`gs://models-bucket/lockstep/serving/${ref.hash}`);
    expect(gcs.names('models-bucket')).toEqual([
      `lockstep/serving/${ref.hash}/.lockstep-complete`,
      `lockstep/serving/${ref.hash}/fixture.json`,
    ]);
    const stored = gcs.object('models-bucket', `lockstep/serving/${ref.hash}/fixture.json`)!;
    expect(JSON.parse(Buffer.from((stored as { data: Buffer }).data).toString('utf8')).tag).toBe('stage');
    const uploads = gcs.count('upload');
    expect(await stageModelToGcs(repo, ref, 'gs://models-bucket/lockstep', { storageOptions })).toBe(uri);
    expect(gcs.count('upload')).toBe(uploads);
    await expect(stageModelToGcs(repo, ref, 's3://nope', { storageOptions })).rejects.toThrow(
      /not a gs:\/\/ URI "s3:\/\/nope"/,
    );
  });
});
