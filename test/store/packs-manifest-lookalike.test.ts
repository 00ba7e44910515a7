/**
 * A directory may hold a file whose bytes happen to be a lockstep manifest (a copy of one, a test
 * fixture, or a file written to look like one). A push must not take such a file for a directory
 * it packs: one naming sibling files with sizes they do not have made every push fail.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { artifactObjects, commitArtifact, isArtifactCurrent } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import { checkoutArtifact } from '../../lib/store/checkout.ts';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import { repoAt } from '../../lib/repo.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('a file that looks like a manifest', () => {
  it('does not make a push build packs of the sizes it claims', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-packs-lookalike-'));
    dirs.push(dir);
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`clip-${i}.txt`] = randomBytes(300).toString('hex');
    // Valid manifest bytes naming two of its siblings, with sizes they do not have.
    const [a, b] = [files['clip-0.txt']!, files['clip-1.txt']!];
    files['lookalike.json'] = JSON.stringify({
      entries: [
        { path: 'a', sha256: sha256(a), size: 3 },
        { path: 'b', sha256: sha256(b), size: 4 },
      ],
    });
    const src = repoAt(fs.mkdtempSync(path.join(dir, 'src-')));
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.join(src.root, 'data'), { recursive: true });
      fs.writeFileSync(path.join(src.root, 'data', rel), text);
    }
    const cache = new Cache(src);
    const ref = await commitArtifact(src, 'data', { cache });
    const remote = new LocalRemote(path.join(dir, 'remote'));
    await pushObjects(src, remote, await artifactObjects(src, ref, { cache }));

    const clone = repoAt(fs.mkdtempSync(path.join(dir, 'clone-')));
    await checkoutArtifact(clone, ref, { remote });
    expect(await isArtifactCurrent(clone, ref)).toBe(true);
    for (const [rel, text] of Object.entries(files))
      expect(fs.readFileSync(path.join(clone.root, 'data', rel), 'utf8')).toBe(text);
  });
});
