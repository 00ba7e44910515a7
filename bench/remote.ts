/**
 * `npm run bench -- remote`: pushing 10,000 small objects (100 MiB) to a gs:// remote served by the
 * local fake GCS server, through the real transfer layer (`pushObjects`, sha256 verify before
 * upload, declared crc32c/md5). Then the same push again with nothing new: it must cost a handful
 * of list requests, not one request per object (run three times: median time, worst request
 * count). Headline: `noop_vs_first_push`, the no-op push time as a fraction of the first push,
 * measured in the same run.
 *
 * Then the same files as one directory artifact (its manifest pushed with them), which sends them
 * in packs (lib/store/packs.ts), to a fresh prefix: `dir_push_vs_loose` and `dir_pull_vs_loose`
 * are its push and fresh pull times over the loose ones above, same run, same bytes.
 *
 * Sizes can be shrunk for a quick look: REMOTE_BENCH_FILES, REMOTE_BENCH_MIB.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { FakeGcs } from '../test/support/fake-gcs.ts';
import { GcsRemote } from '../lib/store/gcs-remote.ts';
import { Cache } from '../lib/store/cache.ts';
import { pullObjects, pushObjects } from '../lib/store/transfer.ts';
import { repoAt } from '../lib/repo.ts';
import { encodeManifest } from '../lib/store/manifest.ts';

const FILES = Number(process.env.REMOTE_BENCH_FILES ?? 10_000);
const TOTAL_MIB = Number(process.env.REMOTE_BENCH_MIB ?? 100);
const JOBS = 16;

export default async function bench(): Promise<Record<string, number | string>> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-remote-'));
  const pullRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-remote-pull-'));
  const dirPullRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-remote-dirpull-'));
  const fake = await FakeGcs.start();
  try {
    const repo = repoAt(root);
    const cache = new Cache(repo);
    const size = Math.floor((TOTAL_MIB * 1024 * 1024) / FILES);
    const oids: string[] = [];
    // Objects go straight into the cache layout: set-up cost is not what is measured.
    for (let i = 0; i < FILES; i++) {
      const data = randomBytes(size);
      const oid = createHash('sha256').update(data).digest('hex');
      const dest = cache.objectPath(oid);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.writeFileSync(dest, data);
      oids.push(oid);
    }
    const bytes = size * FILES;
    const remote = new GcsRemote('gs://bench-bucket/store', {
      apiEndpoint: fake.url,
      projectId: 'p',
      concurrency: JOBS,
    });

    let t = performance.now();
    const first = await pushObjects(repo, remote, oids, { jobs: JOBS, manifests: [] });
    const firstS = (performance.now() - t) / 1000;
    if (first.transferred !== FILES)
      throw new Error(`bench/remote.ts: first push moved ${first.transferred} of ${FILES}`);
    const firstRequests = fake.count();
    const connections = fake.connections;

    // The no-op push runs three times (the machine is shared): median time, worst request count.
    const noopTimes: number[] = [];
    let noopRequests = 0;
    for (let run = 0; run < 3; run++) {
      fake.resetLog();
      t = performance.now();
      const noop = await pushObjects(repo, remote, oids, { jobs: JOBS, manifests: [] });
      noopTimes.push((performance.now() - t) / 1000);
      if (noop.transferred !== 0)
        throw new Error(`bench/remote.ts: no-op push moved ${noop.transferred} objects`);
      noopRequests = Math.max(noopRequests, fake.count());
    }
    const noopS = noopTimes.sort((a, b) => a - b)[1];

    // One missing object among 10,000: the push must find it and send only it.
    const dropped = oids[Math.floor(FILES / 2)];
    fake.deleteObject('bench-bucket', remote.keyOf(dropped));
    fake.resetLog();
    t = performance.now();
    const one = await pushObjects(repo, remote, oids, { jobs: JOBS, manifests: [] });
    const oneS = (performance.now() - t) / 1000;
    if (one.transferred !== 1)
      throw new Error(`bench/remote.ts: repair push moved ${one.transferred} objects`);
    const oneRequests = fake.count();

    fake.resetLog();
    t = performance.now();
    const pulled = await pullObjects(repoAt(pullRoot), remote, oids, { jobs: JOBS, manifests: [] });
    const pullS = (performance.now() - t) / 1000;
    if (pulled.transferred !== FILES)
      throw new Error(`bench/remote.ts: pull moved ${pulled.transferred} of ${FILES}`);

    // The same files as one directory: its manifest goes with them, so they travel in packs.
    const manifest = await cache.insertBytes(
      encodeManifest(oids.map((oid, i) => ({ path: `clips/${i}.bin`, sha256: oid, size }))),
    );
    const packed = new GcsRemote('gs://bench-bucket/packed', {
      apiEndpoint: fake.url,
      projectId: 'p',
      concurrency: JOBS,
    });
    fake.resetLog();
    t = performance.now();
    const dirPush = await pushObjects(repo, packed, [manifest, ...oids], {
      jobs: JOBS,
      manifests: [manifest],
    });
    const dirPushS = (performance.now() - t) / 1000;
    const dirPushRequests = fake.count();
    if (dirPush.transferred !== FILES + 1)
      throw new Error(`bench/remote.ts: directory push moved ${dirPush.transferred} of ${FILES + 1}`);
    fake.resetLog();
    t = performance.now();
    const dirRepo = repoAt(dirPullRoot);
    await pullObjects(dirRepo, packed, [manifest], { jobs: JOBS, manifests: [] });
    const dirPull = await pullObjects(dirRepo, packed, [manifest, ...oids], {
      jobs: JOBS,
      manifests: [manifest],
    });
    const dirPullS = (performance.now() - t) / 1000;
    const dirPullRequests = fake.count();
    if (dirPull.transferred !== FILES)
      throw new Error(`bench/remote.ts: directory pull moved ${dirPull.transferred} of ${FILES}`);

    const mib = bytes / (1024 * 1024);
    return {
      files: FILES,
      total_mib: Number(mib.toFixed(1)),
      first_push_s: Number(firstS.toFixed(2)),
      first_push_mb_s: Number((mib / firstS).toFixed(1)),
      first_push_files_s: Math.round(FILES / firstS),
      first_push_requests: firstRequests,
      first_push_connections: connections,
      noop_push_s: Number(noopS.toFixed(3)),
      noop_push_max_s: Number(noopTimes[2].toFixed(3)),
      noop_push_requests: noopRequests,
      one_missing_push_s: Number(oneS.toFixed(3)),
      one_missing_push_requests: oneRequests,
      pull_s: Number(pullS.toFixed(2)),
      pull_mb_s: Number((mib / pullS).toFixed(1)),
      noop_vs_first_push: Number((noopS / firstS).toFixed(4)),
      dir_push_s: Number(dirPushS.toFixed(2)),
      dir_push_requests: dirPushRequests,
      dir_pull_s: Number(dirPullS.toFixed(2)),
      dir_pull_requests: dirPullRequests,
      dir_push_vs_loose: Number((dirPushS / firstS).toFixed(3)),
      dir_pull_vs_loose: Number((dirPullS / pullS).toFixed(3)),
      note: 'fake GCS server in the same process on 127.0.0.1; 2 shared cores',
    };
  } finally {
    await fake.close();
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(pullRoot, { recursive: true, force: true });
    fs.rmSync(dirPullRoot, { recursive: true, force: true });
  }
}
