/**
 * A real git repository in a temp directory, for tests. Anyone may import it:
 *
 *   const t = await createTmpRepo({ 'params.yaml': 'train:\n  epochs: 3\n' });
 *   t.write('data/a.txt', 'hello'); t.commit('add data'); ... await t.cleanup();
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repoAt, type Repo } from '../../lib/repo.ts';

export interface TmpRepo {
  root: string;
  repo: Repo;
  /** Runs git in the repo and returns stdout (trimmed). */
  git(...args: string[]): string;
  /** Writes a file (creating directories). */
  write(rel: string, content: string | Uint8Array): void;
  read(rel: string): string;
  exists(rel: string): boolean;
  /** `git add -A && git commit`; returns the new commit id. */
  commit(message: string): string;
  cleanup(): Promise<void>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
};

/**
 * Creates a temp git repository (branch `main`) holding `files`, with `.gitignore` ignoring
 * `.lockstep/*` (except config.yaml) and `out/`. Commits the files when `commit` is true (default).
 */
export async function createTmpRepo(
  files: Record<string, string> = {},
  options: { commit?: boolean; prefix?: string } = {},
): Promise<TmpRepo> {
  const root = await fs.promises.mkdtemp(path.join(os.tmpdir(), options.prefix ?? 'lockstep-test-'));
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: root, env: { ...process.env, ...GIT_ENV }, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  git('config', 'user.name', 'Test');
  git('config', 'user.email', 'test@example.com');
  git('config', 'commit.gpgsign', 'false');
  const write = (rel: string, content: string | Uint8Array) => {
    const abs = path.join(root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
  };
  write('.gitignore', '/.lockstep/*\n!/.lockstep/config.yaml\n/out/\n');
  for (const [rel, content] of Object.entries(files)) write(rel, content);
  const t: TmpRepo = {
    root,
    repo: repoAt(root),
    git,
    write,
    read: (rel) => fs.readFileSync(path.join(root, rel), 'utf8'),
    exists: (rel) => fs.existsSync(path.join(root, rel)),
    commit(message: string) {
      git('add', '-A');
      git('commit', '-q', '--allow-empty', '-m', message);
      return git('rev-parse', 'HEAD');
    },
    cleanup: () => fs.promises.rm(root, { recursive: true, force: true }),
  };
  if (options.commit ?? true) t.commit('initial');
  return t;
}
