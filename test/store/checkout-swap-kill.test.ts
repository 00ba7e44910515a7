/**
 * A checkout killed between moving aside what is at the path (a file where a directory artifact
 * goes) and renaming the build in: what was moved aside must not stay in the work tree, where git
 * status shows it and an `add` of the parent directory tracks it, and the next command holding
 * the repo lock clears it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoAt } from '../../lib/repo.ts';
import { Cache } from '../../lib/store/cache.ts';
import { commitArtifact } from '../../lib/store/artifacts.ts';
import { checkoutArtifact } from '../../lib/store/checkout.ts';
import { withRepoLock } from '../../lib/lock.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('checkout killed mid-swap', () => {
  it('leaves what it moved aside out of the work tree, and the next locked command clears it', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-kill-swap-'));
    dirs.push(root);
    const repo = repoAt(root);
    fs.mkdirSync(path.join(root, 'data/in/sub'), { recursive: true });
    fs.writeFileSync(path.join(root, 'data/in/a.txt'), 'alpha\n');
    fs.writeFileSync(path.join(root, 'data/in/sub/b.txt'), 'beta\n');
    const ref = await commitArtifact(repo, 'data/in', { cache: new Cache(repo) });
    fs.rmSync(path.join(root, 'data/in'), { recursive: true });
    fs.writeFileSync(path.join(root, 'data/in'), 'one file, before the dataset grew\n');

    // A child checks out and is SIGKILLed as it renames the build in (after the move-aside).
    const script = path.join(root, 'kill.mts');
    fs.writeFileSync(
      script,
      `import fs from 'node:fs';
import { repoAt } from ${JSON.stringify(path.join(ROOT, 'lib/repo.ts'))};
import { checkoutArtifact } from ${JSON.stringify(path.join(ROOT, 'lib/store/checkout.ts'))};
const real = fs.promises.rename;
fs.promises.rename = async (from, to) => {
  if (to === ${JSON.stringify(path.join(root, 'data/in'))} && String(from).includes('.lockstep-')) process.kill(process.pid, 'SIGKILL');
  return real(from, to);
};
await checkoutArtifact(repoAt(${JSON.stringify(root)}), ${JSON.stringify(ref)});
`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8' });
    expect(child.signal, child.stderr).toBe('SIGKILL');
    fs.rmSync(script);

    const moved = fs.readdirSync(path.join(root, 'data')).filter((n) => n.endsWith('.old'));
    expect(moved).toEqual([]);

    // The next checkout, under the repo lock as the CLI runs it, puts the artifact in place and
    // clears what the killed one moved aside.
    await withRepoLock(repo, 'checkout', () => checkoutArtifact(repo, ref));
    expect(fs.readFileSync(path.join(root, 'data/in/a.txt'), 'utf8')).toBe('alpha\n');
    const tmp = fs.existsSync(repo.tmpDir) ? fs.readdirSync(repo.tmpDir) : [];
    expect(tmp).toEqual([]);
  });
});
