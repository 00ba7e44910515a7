import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseExpComment } from '../../lib/cli/exp-comment.ts';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';
import { cliIn } from './helpers.ts';

const canary = path.join(os.tmpdir(), `lockstep-comment-canary-${process.pid}`);

describe('parseExpComment', () => {
  it.each([
    ['/lockstep exp run -S train.lr=0.01', { ok: true, setParam: ['train.lr=0.01'] }],
    [
      'Looks good.\r\n/lockstep exp run -S train.lr=0.01,0.03 -S train.units=64 --name sweep\nthanks',
      { ok: true, setParam: ['train.lr=0.01,0.03', 'train.units=64'], name: 'sweep' },
    ],
    // Shell metacharacters and expressions inside a value stay literal characters.
    [
      `/lockstep exp run -S 'data.source=$(touch ${canary}); \`touch ${canary}\` \${{ secrets.TOKEN }}'`,
      { ok: true, setParam: [`data.source=$(touch ${canary}); \`touch ${canary}\` \${{ secrets.TOKEN }}`] },
    ],
    ['/lockstep exp run -S "train.arch=a|b&&c>d"', { ok: true, setParam: ['train.arch=a|b&&c>d'] }],
  ])('parseExpComment reads %j', async (body, expected) => {
    expect(await parseExpComment(body)).toEqual(expected);
    expect(fs.existsSync(canary)).toBe(false);
  });

  it.each([
    ['/lockstep exp run -S train.lr=0.01 ; touch /tmp/x', /unexpected|too many|excess/i],
    ['/lockstep exp run -S train.lr=0.01 --pipeline evil.ts', /"pipeline" cannot be set from a comment/],
    ['/lockstep exp run -S train.lr=0.01 --queue', /"queue" cannot be set from a comment/],
    // Where the experiments compute is the workflow's choice (LOCKSTEP_EXP_COMPUTE), not the commenter's.
    ['/lockstep exp run --compute vertex -S train.lr=0.01', /"compute" cannot be set from a comment/],
    ['/lockstep exp run -S train.lr=0.01 --compute=local --compute vertex', /"compute" cannot be set/],
    ['/lockstep exp run --rm-rf', /unknown option/],
    ['/lockstep promote prod', /only "\/lockstep exp run"/],
    ['/lockstep exp run', /no -S/],
    ['please run it', /no line starting with/],
    ['/lockstep exp run -S ${{ github.token }}', /unexpected|too many|excess/i],
  ])('parseExpComment refuses %j', async (body, reason) => {
    const res = await parseExpComment(body);
    expect(res.ok).toBe(false);
    expect(res.ok ? '' : res.reason).toMatch(reason);
  });
});

describe('lockstep exp comment --plan', () => {
  let gh: FakeGitHub;
  let t: TmpRepo;
  const saved: Record<string, string | undefined> = {};
  const ENV = [
    'GITHUB_API_URL',
    'GITHUB_TOKEN',
    'GITHUB_REPOSITORY',
    'LOCKSTEP_COMMENT_BODY',
    'LOCKSTEP_COMMENT_AUTHOR',
    'LOCKSTEP_PR_NUMBER',
  ];

  beforeAll(async () => {
    gh = await startFakeGitHub({
      routes: [
        {
          method: 'GET',
          path: '/repos/:owner/:repo/collaborators/:user/permission',
          handle: ({ params }) =>
            params.user === 'stranger'
              ? { status: 404, body: { message: 'Not Found' } }
              : {
                  status: 200,
                  body: {
                    permission: params.user === 'maintainer' ? 'write' : 'read',
                    role_name: params.user === 'maintainer' ? 'write' : 'read',
                  },
                },
        },
      ],
    });
    t = await createTmpRepo({ 'params.yaml': 'train:\n  lr: 0.01\n  units: 64\n' });
    for (const k of ENV) saved[k] = process.env[k];
    process.env.GITHUB_API_URL = gh.url;
    process.env.GITHUB_TOKEN = 'test-token';
    process.env.GITHUB_REPOSITORY = `${gh.state.owner}/${gh.state.repo}`;
    process.env.LOCKSTEP_PR_NUMBER = '7';
  });

  afterAll(async () => {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await gh.close();
    await t.cleanup();
  });

  const plan = async (author: string, body: string) => {
    process.env.LOCKSTEP_COMMENT_AUTHOR = author;
    process.env.LOCKSTEP_COMMENT_BODY = body;
    const r = await cliIn(t.root, 'exp', 'comment', '--plan');
    expect(r.code, r.err).toBe(0);
    return JSON.parse(r.out);
  };

  it('exp comment --plan expands the grid for a commenter with write access', async () => {
    const res = await plan(
      'maintainer',
      '/lockstep exp run -S train.lr=0.01,0.03 -S train.units=32 --name s',
    );
    expect(res.allowed).toBe(true);
    expect(res.experiments).toEqual([
      { index: 0, name: 's-1', overrides: { 'train.lr': 0.01, 'train.units': 32 } },
      { index: 1, name: 's-2', overrides: { 'train.lr': 0.03, 'train.units': 32 } },
    ]);
    expect(gh.state.comments.get(7) ?? []).toEqual([]);
  });

  it('exp comment --queue queues the experiments --plan names, with --compute kept on each entry', async () => {
    const body = '/lockstep exp run -S train.lr=0.01,0.03 --name q';
    const planned = await plan('maintainer', body);
    const r = await cliIn(t.root, 'exp', 'comment', '--queue', '--compute', 'vertex');
    expect(r.code, r.err).toBe(0);
    const { queued } = JSON.parse(r.out) as { queued: Array<{ name: string; compute?: string }> };
    expect(queued.map((e) => e.name)).toEqual(planned.experiments.map((e: { name: string }) => e.name));
    expect(queued.every((e) => e.compute === 'vertex')).toBe(true);
    const status = JSON.parse((await cliIn(t.root, 'exp', 'queue', 'status', '--json')).out);
    expect(status.map((e: { name: string; state: string }) => [e.name, e.state])).toEqual([
      ['q-1', 'queued'],
      ['q-2', 'queued'],
    ]);
    const bad = await cliIn(t.root, 'exp', 'comment', '--queue', '--compute', 'gpu');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--compute: unknown backend "gpu"/);
  });

  it.each([['--plan'], ['--report']])(
    'exp comment %s --compute is a usage error (it only applies to --run and --queue), nothing runs',
    async (mode) => {
      const before = gh.requests.length;
      const r = await cliIn(t.root, 'exp', 'comment', mode, '--compute', 'vertex');
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/--compute: only with --run or --queue/);
      expect(gh.requests.length).toBe(before);
    },
  );

  it.each([
    ['reader', /needs write access to this repository \(yours: read\)/],
    ['stranger', /needs write access to this repository \(yours: none\)/],
  ])('exp comment --plan ignores %s with a reply that says why', async (author, reason) => {
    const before = (gh.state.comments.get(7) ?? []).length;
    const res = await plan(author, `/lockstep exp run -S 'train.lr=$(touch ${canary})'`);
    expect(res).toEqual({ allowed: false, reason: expect.stringMatching(reason), experiments: [] });
    const replies = gh.state.comments.get(7)!;
    expect(replies).toHaveLength(before + 1);
    expect(replies.at(-1)!.body).toMatch(new RegExp(`^@${author}: .*the command was ignored\\.$`));
    expect(fs.existsSync(canary)).toBe(false);
  });

  it('exp comment --plan refuses a value the params schema rejects, with the key named in the reply', async () => {
    const res = await plan('maintainer', '/lockstep exp run -S train.units=many');
    expect(res.allowed).toBe(false);
    expect(gh.state.comments.get(7)!.at(-1)!.body).toMatch(/train\.units/);
  });

  it.each([['--name=../../x'], [`--name ${'n'.repeat(100)} -S train.units=8,16`]])(
    'exp comment --plan refuses an experiment name no ref can carry (%s) with a reply, before any job runs',
    async (flags) => {
      const res = await plan('maintainer', `/lockstep exp run -S train.lr=0.02 ${flags}`);
      expect(res.allowed).toBe(false);
      expect(res.experiments).toEqual([]);
      expect(gh.state.comments.get(7)!.at(-1)!.body).toMatch(/not a valid experiment name/);
    },
  );
});
