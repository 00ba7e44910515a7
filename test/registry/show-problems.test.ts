/**
 * `registry show` when an environment cannot be read (its policy file or the lockfile at its
 * branch head is corrupt): it still answers for the others and names the problem.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { showRegistry } from '../../lib/registry/registry.ts';
import { useModelHistory } from '../support/model-history-repo.ts';

const repo = useModelHistory('lockstep-show-problems-', { commits: 8, stagingEvery: 2, prodEvery: 2 });
const { git, cli } = repo;

describe('registry show with an unreadable environment', () => {
  it('names a corrupt lockfile at an environment head and still answers for the others', async () => {
    git('checkout', '-q', 'staging');
    fs.writeFileSync(path.join(repo.dir, 'artifacts.lock.yaml'), 'schema: 1\nstages: [oops\n');
    git('commit', '-qam', 'break the lockfile');
    git('checkout', '-q', '--detach', 'prod');
    for (const history of [false, true]) {
      const e = await showRegistry(repo.dir, 'prod', { history });
      expect(e.environments).toContainEqual({ env: 'prod', state: 'current' });
      expect(e.problems).toEqual([
        expect.stringMatching(/^staging: artifacts\.lock\.yaml@[0-9a-f]{8}:3: invalid YAML/),
      ]);
    }
    const r = await cli('registry', 'show', 'prod');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/environments: prod \(current\)/);
    expect(r.out).toMatch(/^unreadable: {3}staging: artifacts\.lock\.yaml@/m);
  });

  it('names a corrupt environment policy and still answers for the others', async () => {
    fs.writeFileSync(path.join(repo.dir, 'promotion', 'staging.yaml'), 'branch: [\n');
    for (const history of [false, true]) {
      const e = await showRegistry(repo.dir, 'prod', { history });
      expect(e.environments).toContainEqual({ env: 'prod', state: 'current' });
      expect(e.problems).toEqual([
        expect.stringMatching(/^staging: promotion\/staging\.yaml:2: invalid YAML/),
      ]);
    }
    const r = await cli('registry', 'show', 'prod', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).problems).toHaveLength(1);
  });

  it('lists no problem when every environment reads', async () => {
    expect((await showRegistry(repo.dir, 'prod')).problems).toEqual([]);
  });
});
