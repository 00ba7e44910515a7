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

/**
 * Runs the store commands (add, push, pull, gc) the way `lockstep` does: same registration,
 * same error-to-exit-code mapping as lib/cli/main.ts, but without loading every other command,
 * so these tests do not depend on unrelated commands being importable.
 */
export async function runStoreCli(
  cwd: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { Command, CommanderError } = await import('commander');
  const { memoryOutput } = await import('../../lib/output.ts');
  const { LockstepError, toOneLine } = await import('../../lib/errors.ts');
  const out = memoryOutput();
  const io = { ...out, cwd };
  const program = new Command('lockstep').exitOverride().configureOutput({
    writeOut: (s) => io.out(s.replace(/\n$/, '')),
    writeErr: (s) => io.err(s.replace(/\n$/, '')),
  });
  for (const name of ['add', 'push', 'pull', 'gc']) {
    const mod = (await import(`../../lib/cli/commands/${name}.ts`)) as {
      register(p: InstanceType<typeof Command>, io: typeof out & { cwd: string }): void;
    };
    mod.register(program, io);
  }
  for (const cmd of program.commands) cmd.exitOverride();
  let code = 0;
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) code = err.exitCode === 0 ? 0 : 2;
    else {
      io.err(`lockstep: ${toOneLine(err)}`);
      code = err instanceof LockstepError ? err.exitCode : 1;
    }
  }
  return { code, stdout: out.stdout.join('\n'), stderr: out.stderr.join('\n') };
}

/** Sets the mtime of every file under `dir` one minute into the past (out of the racy window). */
export function ageFiles(dir: string): void {
  const past = new Date(Date.now() - 60_000);
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else fs.utimesSync(p, past, past);
    }
  };
  walk(dir);
}
