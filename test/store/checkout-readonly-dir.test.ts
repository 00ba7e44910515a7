/**
 * A checkout over a read-only directory, by a user who owns it (not root): moving a directory to
 * another parent needs write permission on the directory itself, so the move-aside falls back to
 * a sibling name, where a read-only directory can still be renamed. Runs the checkout as `nobody`
 * through setpriv, so it needs root and setpriv; skipped otherwise.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoAt } from '../../lib/repo.ts';
import { Cache } from '../../lib/store/cache.ts';
import { commitArtifact } from '../../lib/store/artifacts.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const canDrop = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) {
    spawnSync('chmod', ['-R', 'u+w', d]);
    fs.rmSync(d, { recursive: true, force: true });
  }
});

describe.skipIf(!canDrop)('checkout over a read-only directory, not as root', () => {
  it('replaces it', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ro-'));
    dirs.push(root);
    fs.chmodSync(root, 0o755);
    const repo = repoAt(root);
    fs.mkdirSync(path.join(root, 'data/in'), { recursive: true });
    fs.writeFileSync(path.join(root, 'data/in/a.txt'), 'alpha\n');
    const ref = await commitArtifact(repo, 'data/in', { cache: new Cache(repo) });
    fs.rmSync(path.join(root, 'data/in'), { recursive: true });
    fs.mkdirSync(path.join(root, 'data/in'));
    fs.writeFileSync(path.join(root, 'data/in/old.txt'), 'old\n');
    spawnSync('chown', ['-R', 'nobody:', root]);
    fs.chmodSync(path.join(root, 'data/in'), 0o555);
    const script = path.join(root, 'co.mts');
    fs.writeFileSync(
      script,
      `import { repoAt } from ${JSON.stringify(path.join(ROOT, 'lib/repo.ts'))};
import { checkoutArtifact } from ${JSON.stringify(path.join(ROOT, 'lib/store/checkout.ts'))};
await checkoutArtifact(repoAt(${JSON.stringify(root)}), ${JSON.stringify(ref)});
`,
    );
    const child = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', script],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, HOME: root } },
    );
    expect(child.status, child.stderr).toBe(0);
    expect(fs.readdirSync(path.join(root, 'data/in'))).toEqual(['a.txt']);
    expect(fs.readdirSync(path.join(root, 'data'))).toEqual(['in']);
  });
});
