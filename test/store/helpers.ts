/** Shared fixtures for the store tests: temp repositories and small trees of files. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repoAt, type Repo } from '../../lib/repo.ts';

export function tempDir(prefix = 'lockstep-store-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A fresh repository directory (with `git init` when `git` is true). */
export function makeRepo(options: { git?: boolean } = {}): Repo {
  const root = tempDir();
  if (options.git) {
    git(root, 'init', '-q', '-b', 'main');
    git(root, 'config', 'user.email', 't@example.com');
    git(root, 'config', 'user.name', 'T');
    git(root, 'config', 'commit.gpgsign', 'false');
  }
  return repoAt(root);
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8' });
}

/** Writes `files` (relative path -> content) under `root`. */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
  }
}

/** `n` files of distinct content under `root/dir`. */
export function writeFiles(root: string, dir: string, n: number, size = 100): void {
  for (let i = 0; i < n; i++) {
    writeTree(root, { [`${dir}/f${String(i).padStart(4, '0')}.txt`]: `${i}:`.padEnd(size, String(i % 10)) });
  }
}

/** Every object file in a cache or remote directory, as [oid, absolute path]. */
export function listObjects(storeRoot: string): Array<[string, string]> {
  const base = path.join(storeRoot, 'sha256');
  if (!fs.existsSync(base)) return [];
  const out: Array<[string, string]> = [];
  for (const prefix of fs.readdirSync(base)) {
    for (const rest of fs.readdirSync(path.join(base, prefix)))
      out.push([prefix + rest, path.join(base, prefix, rest)]);
  }
  return out.sort();
}

export function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}
