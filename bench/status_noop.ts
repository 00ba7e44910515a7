/**
 * status_noop: the store's "is everything current" check (isArtifactCurrent through the hash
 * state, as `lockstep status` calls it) on a 10,000-file tracked directory with nothing changed,
 * against a plain Node stat walk of the same files in the same run. Each measurement starts with
 * the hash state unloaded, so loading it is included, as in a fresh process.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoAt } from '../lib/repo.ts';
import { hashArtifact, isArtifactCurrent } from '../lib/store/artifacts.ts';
import { unloadHashState } from '../lib/store/hash-state.ts';

const FILES = 10_000;
const ROUNDS = 7;

function statWalk(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    const st = fs.statSync(p);
    if (st.isDirectory()) n += statWalk(p);
    else n++;
  }
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export default async function statusNoop(): Promise<Record<string, number | string>> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-status-'));
  try {
    const repo = repoAt(root);
    for (let d = 0; d < 100; d++) {
      const dir = path.join(root, 'data', `d${String(d).padStart(3, '0')}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let i = 0; i < FILES / 100; i++) fs.writeFileSync(path.join(dir, `f${i}.txt`), `file ${d}/${i}\n`);
    }
    // Out of the hash state's racy window, so the state records every file.
    await new Promise((r) => setTimeout(r, 200));
    const ref = await hashArtifact(repo, 'data');
    if (ref.nfiles !== FILES) throw new Error(`expected ${FILES} files, got ${ref.nfiles}`);
    const ours: number[] = [];
    const walk: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      let t = performance.now();
      if (statWalk(path.join(root, 'data')) !== FILES) throw new Error('stat walk miscounted');
      walk.push((performance.now() - t) / 1000);
      unloadHashState(repo);
      t = performance.now();
      if (!(await isArtifactCurrent(repo, ref))) throw new Error('dataset unexpectedly not current');
      ours.push((performance.now() - t) / 1000);
    }
    const seconds = median(ours);
    const baseline = median(walk);
    return {
      ratio_vs_stat_walk: Number((seconds / baseline).toFixed(2)),
      seconds: Number(seconds.toFixed(4)),
      stat_walk_seconds: Number(baseline.toFixed(4)),
      files: FILES,
      rounds: ROUNDS,
      load_average_1m: Number(os.loadavg()[0]!.toFixed(1)),
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
