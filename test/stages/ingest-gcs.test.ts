import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryOutput } from '../../lib/output.ts';
import { downloadPrefix } from '../../stages/ingest/gcs.ts';
import { ingestStage, STAGING } from '../../stages/ingest/index.ts';
import type { IngestManifest } from '../../stages/ingest/manifest.ts';
import { paramsSchema } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { makeTinyCorpus } from '../support/corpus.ts';
import { FakeGcs } from '../support/fake-gcs.ts';

let fake: FakeGcs;
let root: string;
let rels: string[];

beforeAll(async () => {
  fake = await FakeGcs.start();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ingest-gcs-'));
  const corpus = path.join(root, 'corpus');
  const files = await makeTinyCorpus(corpus, { speakers: 3, words: 1, emotions: ['angry', 'sad'] });
  rels = files.map((f) => path.relative(corpus, f).split(path.sep).join('/'));
  for (const rel of rels) fake.putObject('emo-data', `tess/${rel}`, fs.readFileSync(path.join(corpus, rel)));
  fake.putObject('emo-data', 'tess/README.txt', Buffer.from('not audio'));
  fake.putObject('emo-data', 'other/x.wav', Buffer.from('outside the prefix'));
});
afterAll(async () => {
  await fake.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('ingest from gs://', () => {
  it('ingest gcs downloads the .wav objects under the prefix and skips the ones already there', async () => {
    const dest = path.join(root, 'staged');
    const got = await downloadPrefix('gs://emo-data/tess', dest, { apiEndpoint: fake.url, projectId: 'p' });
    expect(got).toEqual([...rels].sort());
    for (const rel of rels) {
      expect(
        fs.readFileSync(path.join(dest, rel)).equals(fs.readFileSync(path.join(root, 'corpus', rel))),
      ).toBe(true);
    }
    const downloads = fake.count('download');
    await downloadPrefix('gs://emo-data/tess', dest, { apiEndpoint: fake.url, projectId: 'p' });
    expect(fake.count('download')).toBe(downloads);
    await expect(downloadPrefix('gs://Bad_Bucket!/x', dest)).rejects.toThrow(/^params\.yaml: data\.path: /);
  });

  it('ingest stage reads a gs:// data.path through the staging dir', async () => {
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = fake.url;
    try {
      const params = paramsSchema.parse({ data: { source: 'path', path: 'gs://emo-data/tess' } });
      const stage = ingestStage(params);
      expect(stage.deps).toEqual([]);
      await stage.run({
        root,
        params: params as unknown as Record<string, unknown>,
        out: memoryOutput(),
        abs: (rel) => path.join(root, rel),
        signal: new AbortController().signal,
        inputs: {},
      });
      const m = JSON.parse(fs.readFileSync(path.join(root, PATHS.manifest), 'utf8')) as IngestManifest;
      expect(m.root).toBe(STAGING);
      expect(m.labels).toEqual(['angry', 'sad']);
      expect(m.files.map((f) => f.path)).toEqual([...rels].sort().map((r) => `${STAGING}/${r}`));
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
    }
  });
});
