/**
 * `registry show` when an environment cannot be read (its policy file or the lockfile at its
 * branch head is corrupt): it still answers for the others and names the problem.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { showRegistry } from '../../lib/registry/registry.ts';
import { buildModelHistory } from '../support/model-history.ts';

let dir: string;

function git(...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', dir, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-show-problems-'));
  buildModelHistory(dir, { commits: 8, stagingEvery: 2, prodEvery: 2 });
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('registry show with an unreadable environment', () => {
  it('names a corrupt lockfile at an environment head and still answers for the others', async () => {
    git('checkout', '-q', 'staging');
    fs.writeFileSync(path.join(dir, 'artifacts.lock.yaml'), 'schema: 1\nstages: [oops\n');
    git('commit', '-qam', 'break the lockfile');
    git('checkout', '-q', '--detach', 'prod');
    for (const history of [false, true]) {
      const e = await showRegistry(dir, 'prod', { history });
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
    fs.writeFileSync(path.join(dir, 'promotion', 'staging.yaml'), 'branch: [\n');
    for (const history of [false, true]) {
      const e = await showRegistry(dir, 'prod', { history });
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
    expect((await showRegistry(dir, 'prod')).problems).toEqual([]);
  });
});
