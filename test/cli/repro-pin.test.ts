import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

async function repro(...args: string[]): Promise<{ code: number; err: string[] }> {
  const o = memoryOutput();
  const code = await main(['-C', t!.root, 'repro', ...args], o);
  return { code, err: o.stderr.join('\n').split('\n') };
}

describe('lockstep repro --pin-inputs', () => {
  it('a missing, empty, directory or malformed pin file fails in one line before anything runs', async () => {
    t = await createTmpRepo({
      'params.yaml': 'train:\n  epochs: 2\n',
      'bad.lock.yaml': 'schema: 1\nstages: [\n',
    });
    fs.mkdirSync(path.join(t.root, 'dir.lock.yaml'));
    const before = t.git('status', '--porcelain', '--ignored');
    const missing = await repro('--pin-inputs', path.join(t.root, 'nope.lock.yaml'));
    expect(missing.code).toBe(2);
    expect(missing.err).toEqual([
      expect.stringMatching(/^lockstep: --pin-inputs: cannot read ".*nope\.lock\.yaml" \(ENOENT\)/),
    ]);
    const empty = await repro('--pin-inputs', '');
    expect(empty).toEqual({
      code: 2,
      err: ['lockstep: --pin-inputs: empty path "". Pass the lockfile whose inputs to replay.'],
    });
    const dir = await repro('--pin-inputs', path.join(t.root, 'dir.lock.yaml'));
    expect(dir.code).toBe(2);
    expect(dir.err).toEqual([expect.stringContaining('(EISDIR)')]);
    const bad = await repro('--pin-inputs', path.join(t.root, 'bad.lock.yaml'));
    expect(bad.code).toBe(1);
    expect(bad.err).toEqual([expect.stringMatching(/^lockstep: .*bad\.lock\.yaml:\d+: invalid YAML: /)]);
    expect(t.git('status', '--porcelain', '--ignored')).toBe(before);
  });
});
