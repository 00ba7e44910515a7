import { describe, expect, it, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { readConfig } from '../../lib/config.ts';
import { defaultRemote } from '../../lib/store/remote-config.ts';
import { ConfigError } from '../../lib/errors.ts';
import { makeRepo, writeTree, rmrf } from './helpers.ts';

const cleanup: string[] = [];
afterEach(() => {
  cleanup.splice(0).forEach(rmrf);
  delete process.env.LOCKSTEP_REMOTE;
});

describe('config', () => {
  it('readConfig overlays config.local.yaml on config.yaml', () => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    writeTree(repo.root, {
      '.lockstep/config.yaml': 'remote: shared\nremotes:\n  shared: {url: gs://bucket/prefix}\n',
      '.lockstep/config.local.yaml': 'remote: mine\nremotes:\n  mine: {url: ../store}\n',
    });
    expect(readConfig(repo)).toEqual({
      remote: 'mine',
      remotes: { shared: { url: 'gs://bucket/prefix' }, mine: { url: '../store' } },
    });
  });

  it('defaultRemote resolves relative paths against the root, and LOCKSTEP_REMOTE overrides', async () => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    expect(await defaultRemote(repo)).toBeUndefined();
    writeTree(repo.root, { '.lockstep/config.yaml': 'remote: local\nremotes:\n  local: {url: store}\n' });
    expect((await defaultRemote(repo))!.url).toBe(pathToFileURL(path.join(repo.root, 'store')).href);
    process.env.LOCKSTEP_REMOTE = path.join(repo.root, 'other');
    expect((await defaultRemote(repo))!.url).toBe(pathToFileURL(path.join(repo.root, 'other')).href);
  });

  it.each([
    ['remote: x\nremotes: {}\n', /remote: names no entry of remotes "x"/],
    // Both problems of the entry at once: the unknown key and the missing url.
    [
      'remotes:\n  a: {uri: x}\n',
      /^\.lockstep\/config\.yaml:2: remotes\.a\.url: missing.*\n.*remotes\.a\.uri: unknown key/,
    ],
    ['remote: [\n', /invalid YAML/],
    ['colour: blue\n', /config\.yaml/],
  ])('config rejects %j with one ConfigError line per problem', async (text, pattern) => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    fs.mkdirSync(repo.stateDir, { recursive: true });
    fs.writeFileSync(repo.configPath, text);
    const err = await defaultRemote(repo).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(pattern);
    for (const line of err.message.split('\n')) expect(line).toMatch(/^\.lockstep\/config\.yaml(:\d+)?: /);
  });
});
