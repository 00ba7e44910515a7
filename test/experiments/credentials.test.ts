/**
 * A GOOGLE_APPLICATION_CREDENTIALS that points at no file stops experiments that would use
 * Google (Vertex AI stages, a gs:// remote) with one line naming the path, before any worktree or
 * job: `exp run` records nothing, `exp queue start` leaves every entry queued. Experiments that
 * compute here with a local remote are not held up by a stale variable.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { checkGoogleCredentials } from '../../lib/experiments/workspace.ts';
import { enqueue, listQueue } from '../../lib/experiments/queue.ts';
import { repoAt } from '../../lib/repo.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

describe('experiment credentials', () => {
  it.each([
    ['--compute vertex', 'vertex', '', true],
    [
      'a vertex stage in config.yaml',
      undefined,
      'compute:\n  stages:\n    train: { backend: vertex }\n',
      true,
    ],
    ['a gs:// remote', undefined, 'remote: gcs\nremotes:\n  gcs: { url: gs://bucket/cache }\n', true],
    ['--compute local and a local remote', 'local', 'remote: d\nremotes:\n  d: { url: ../store }\n', false],
    [
      '--compute local, even with a vertex stage',
      'local',
      'compute:\n  stages:\n    train: { backend: vertex }\n',
      false,
    ],
  ] as const)('experiment credentials: a missing key file with %s', async (_, compute, config, refused) => {
    t = await createTmpRepo({ 'params.yaml': 'train: { lr: 0.1 }\n' });
    const repo = repoAt(t.root);
    fs.mkdirSync(repo.stateDir, { recursive: true });
    fs.writeFileSync(repo.configPath, config);
    const env = { GOOGLE_APPLICATION_CREDENTIALS: 'keys/missing.json' };
    const check = () => checkGoogleCredentials(repo, compute, env, t!.root);
    if (!refused) return expect(check()).toBeUndefined();
    expect(check).toThrow(
      `GOOGLE_APPLICATION_CREDENTIALS: no such file "${path.join(t.root, 'keys/missing.json')}". Point it at a service account key file, or unset it to use Application Default Credentials.`,
    );
    // A key file that exists passes.
    fs.mkdirSync(path.join(t.root, 'keys'));
    fs.writeFileSync(path.join(t.root, 'keys/missing.json'), '{}');
    expect(check()).toBeUndefined();
  });

  it('experiment credentials: exp queue start --compute vertex with a missing key file fails in one line and leaves the entry queued', async () => {
    t = await createTmpRepo({ 'params.yaml': 'train: { lr: 0.1 }\n' });
    const repo = repoAt(t.root);
    await enqueue(repo, [
      {
        name: 'e1',
        overrides: { 'train.lr': 0.2 },
        base: t.git('rev-parse', 'HEAD'),
        paramsText: 'train: { lr: 0.2 }\n',
      },
    ]);
    const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = path.join(t.root, 'nope.json');
    try {
      for (const args of [
        ['exp', 'queue', 'start', '--compute', 'vertex'],
        ['exp', 'run', '-S', 'train.lr=0.3', '--compute', 'vertex'],
      ]) {
        const out = memoryOutput();
        const code = await main(['-C', t.root, ...args], out);
        expect(code).toBe(1);
        expect(out.stderr.join('\n')).toMatch(
          /^[^\n]*GOOGLE_APPLICATION_CREDENTIALS: no such file "[^"\n]*nope.json"[^\n]*$/,
        );
      }
    } finally {
      if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved;
    }
    expect((await listQueue(repo)).map((e) => [e.name, e.state])).toEqual([['e1', 'queued']]);
    expect(t.git('for-each-ref', 'refs/exps')).toBe('');
  });
});
