/**
 * A model history repository (support/model-history.ts) made fresh for each test of a file: a
 * temp directory built before each test and removed after it, with `git` and the CLI run in it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { buildModelHistory, type ModelHistory, type ModelHistoryOptions } from './model-history.ts';

export interface ModelHistoryRepo {
  /** The repository of the running test. */
  readonly dir: string;
  /** The commits it was built with. */
  readonly history: ModelHistory;
  /** Runs git in it; its trimmed stdout. */
  git(...args: string[]): string;
  /** Runs the CLI in it (`-C dir`). */
  cli(...args: string[]): Promise<{ code: number; out: string; err: string }>;
}

/** Registers the hooks that build (`options`) and remove a history repo around each test. */
export function useModelHistory(prefix: string, options: ModelHistoryOptions): ModelHistoryRepo {
  let dir: string | undefined;
  let history: ModelHistory | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    history = buildModelHistory(dir, options);
  });
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = history = undefined;
  });
  const repo: ModelHistoryRepo = {
    get dir() {
      if (!dir) throw new Error('useModelHistory: no test is running');
      return dir;
    },
    get history() {
      if (!history) throw new Error('useModelHistory: no test is running');
      return history;
    },
    git: (...args) => execFileSync('git', args, { cwd: repo.dir, encoding: 'utf8' }).trim(),
    async cli(...args) {
      const o = memoryOutput();
      const code = await main(['-C', repo.dir, ...args], o);
      return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
    },
  };
  return repo;
}
