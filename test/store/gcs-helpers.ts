/** Fixtures for the GCS remote tests: a fake server, a remote pointed at it, temp files. */
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { FakeGcs } from '../support/fake-gcs.ts';
import { GcsRemote, type GcsRemoteOptions } from '../../lib/store/gcs-remote.ts';
import { objectKey } from '../../lib/store/remote.ts';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { Cache } from '../../lib/store/cache.ts';
import { artifactObjects, commitArtifact } from '../../lib/store/artifacts.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import type { ArtifactRef } from '../../lib/types.ts';

export const BUCKET = 'test-bucket';
export const PREFIX = 'team/store';

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-gcs-'));
}

/** Writes `data` to a new file in `dir` and returns its path and oid. */
export function writeBlob(dir: string, data: Buffer): { file: string; oid: string } {
  const oid = sha256(data);
  const file = path.join(dir, oid);
  fs.writeFileSync(file, data);
  return { file, oid };
}

export function randomBlob(size: number): Buffer {
  return randomBytes(size);
}

/** A remote on the fake server with fast backoff so fault tests stay quick. */
export function remoteOn(fake: FakeGcs, options: GcsRemoteOptions = {}): GcsRemote {
  return new GcsRemote(`gs://${BUCKET}/${PREFIX}`, {
    apiEndpoint: fake.url,
    projectId: 'p',
    maxRetryDelay: 0.02,
    stallTimeout: 0.5,
    resumableChunkSize: 256 * 1024,
    // Session persistence has its own tests with their own directory.
    sessionDir: false,
    ...options,
  });
}

export function keyOf(oid: string): string {
  return `${PREFIX}/${objectKey(oid)}`;
}

/** Puts `n` random small objects straight into the fake bucket; returns their oids, sorted. */
export function seed(fake: FakeGcs, n: number, size = 16): string[] {
  const oids: string[] = [];
  for (let i = 0; i < n; i++) {
    const data = randomBytes(size);
    const oid = sha256(data);
    fake.putObject(BUCKET, keyOf(oid), data);
    oids.push(oid);
  }
  return oids.sort();
}

export function randomOid(): string {
  return randomBytes(32).toString('hex');
}

/**
 * One fake GCS server for the file (reset before each test) and a fresh temp directory per test,
 * registered as vitest hooks. Read `fake` and `dir` inside tests.
 */
export function useGcsFixture(): { readonly fake: FakeGcs; readonly dir: string } {
  let fake: FakeGcs | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    fake = await FakeGcs.start();
  });
  afterAll(async () => {
    await fake?.close();
  });
  beforeEach(() => {
    dir = tempDir();
    fake!.reset();
  });
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    get fake() {
      return fake!;
    },
    get dir() {
      return dir!;
    },
  };
}

/** A new, empty repository under `parent` (a fixture's per-test directory). */
export function repoIn(parent: string): Repo {
  return repoAt(fs.mkdtempSync(path.join(parent, 'repo-')));
}

/**
 * Writes `files` at `rel` in a new repository under `parent` (a string: `rel` is one file of that
 * text), commits it and pushes its objects to `fake`'s remote; returns its ref. `loose`: each
 * object on its own, as a remote holds a directory pushed before packs.
 */
export async function pushedArtifact(
  fake: FakeGcs,
  parent: string,
  rel: string,
  files: Record<string, string> | string,
  options: { loose?: boolean } = {},
): Promise<ArtifactRef> {
  const repo = repoIn(parent);
  const write = (abs: string, text: string) => {
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, text);
  };
  if (typeof files === 'string') write(path.join(repo.root, rel), files);
  else for (const [f, text] of Object.entries(files)) write(path.join(repo.root, rel, f), text);
  const cache = new Cache(repo);
  const ref = await commitArtifact(repo, rel, { cache });
  const oids = await artifactObjects(repo, ref, { cache });
  if (options.loose) {
    const remote = remoteOn(fake);
    for (const oid of new Set(oids)) await remote.put(oid, cache.objectPath(oid));
  } else await pushObjects(repo, remoteOn(fake), oids);
  return ref;
}
