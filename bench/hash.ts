/**
 * hash: the first `add` of 1 GiB in 10,000 files (page cache warm: every file is read once
 * first), against a single-stream Node sha256 over the same bytes in the same run.
 * Headline `speedup_vs_single_stream`: hashing throughput of the store's parallel hasher (worker
 * threads, empty hash state) over the single stream. Also reported: the whole first add
 * (hash + copy into the cache + durability), whose cost on small files is mostly file creation.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomFillSync } from 'node:crypto';
import { repoAt } from '../lib/repo.ts';
import { commitArtifact, hashArtifact } from '../lib/store/artifacts.ts';
import { unloadHashState } from '../lib/store/hash-state.ts';
import { closeHashPool } from '../lib/store/hasher.ts';

const FILES = 10_000;
const TOTAL = 1 << 30;
const ROUNDS = 4;

const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/** Reads every file without hashing (warms the page cache). */
function readAll(files: string[]): void {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
    fs.closeSync(fd);
  }
}

function singleStream(files: string[]): number {
  const buf = Buffer.allocUnsafe(1 << 20);
  let bytes = 0;
  for (const file of files) {
    const hash = createHash('sha256');
    const fd = fs.openSync(file, 'r');
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(n === buf.length ? buf : buf.subarray(0, n));
      bytes += n;
    }
    fs.closeSync(fd);
    hash.digest('hex');
  }
  return bytes;
}

export default async function hashBench(): Promise<Record<string, number | string>> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-hash-'));
  try {
    const repo = repoAt(root);
    const size = Math.floor(TOTAL / FILES);
    const block = Buffer.allocUnsafe(size);
    const files: string[] = [];
    for (let d = 0; d < 100; d++) {
      const dir = path.join(root, 'data', `d${String(d).padStart(3, '0')}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let i = 0; i < FILES / 100; i++) {
        randomFillSync(block, 0, 64); // distinct content per file, cheap to generate
        const file = path.join(dir, `f${i}.bin`);
        fs.writeFileSync(file, block);
        files.push(file);
      }
    }
    const mb = (size * FILES) / 1e6;
    // This VM reclaims page cache eagerly, and gives a session's second thread a vCPU only under
    // sustained multi-threaded load. So each contender runs an untimed warm-up pass right before
    // its timed pass (warming the page cache, and for the hasher its threads), the contenders
    // alternate, and each keeps its best of ROUNDS. The hash state is emptied before every
    // hashing pass, so each timed pass is a first hash. `parallel_seconds_no_warmup` is the
    // timed pass preceded by a plain read instead, for comparison.
    let singleSeconds = Infinity;
    let parallelSeconds = Infinity;
    let parallelNoWarmup = Infinity;
    let hashed;
    let singleCpu = Infinity;
    let parallelCpu = Infinity;
    const firstHash = async () => {
      fs.rmSync(path.join(root, '.lockstep'), { recursive: true, force: true });
      unloadHashState(repo);
      const t = performance.now();
      const cpu = process.cpuUsage();
      hashed = await hashArtifact(repo, 'data');
      return { seconds: (performance.now() - t) / 1000, cpu: cpuSeconds(process.cpuUsage(cpu)) };
    };
    for (let round = 0; round < ROUNDS; round++) {
      readAll(files);
      parallelNoWarmup = Math.min(parallelNoWarmup, (await firstHash()).seconds);
      const warm = await firstHash();
      parallelSeconds = Math.min(parallelSeconds, warm.seconds);
      parallelCpu = Math.min(parallelCpu, warm.cpu);
      singleStream(files);
      const t = performance.now();
      const cpu = process.cpuUsage();
      singleStream(files);
      singleSeconds = Math.min(singleSeconds, (performance.now() - t) / 1000);
      singleCpu = Math.min(singleCpu, cpuSeconds(process.cpuUsage(cpu)));
    }

    fs.rmSync(path.join(root, '.lockstep'), { recursive: true, force: true });
    unloadHashState(repo);
    readAll(files);
    const t = performance.now();
    const added = await commitArtifact(repo, 'data');
    const addSeconds = (performance.now() - t) / 1000;
    if (added.hash !== hashed!.hash || added.nfiles !== FILES) throw new Error('add and hash disagree');
    await closeHashPool();

    return {
      speedup_vs_single_stream: Number((singleSeconds / parallelSeconds).toFixed(2)),
      parallel_mb_s: Math.round(mb / parallelSeconds),
      single_stream_mb_s: Math.round(mb / singleSeconds),
      // CPU seconds (all threads) next to wall seconds show whether the threads got CPU at all:
      // this VM schedules each login session as one group, so on a busy machine they do not.
      parallel_seconds: Number(parallelSeconds.toFixed(2)),
      parallel_seconds_no_warmup: Number(parallelNoWarmup.toFixed(2)),
      parallel_cpu_seconds: Number(parallelCpu.toFixed(2)),
      single_stream_seconds: Number(singleSeconds.toFixed(2)),
      single_stream_cpu_seconds: Number(singleCpu.toFixed(2)),
      add_mb_s: Math.round(mb / addSeconds),
      add_seconds: Number(addSeconds.toFixed(2)),
      add_vs_single_stream: Number((singleSeconds / addSeconds).toFixed(2)),
      files: FILES,
      mb: Math.round(mb),
      cores: os.availableParallelism(),
      rounds: ROUNDS,
      load_average_1m: Number(os.loadavg()[0]!.toFixed(1)),
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
