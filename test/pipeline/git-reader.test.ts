import { afterEach, describe, expect, it } from 'vitest';
import { GitReader, withGitReader } from '../../lib/git-reader.ts';
import { fileHistory } from '../../lib/git-log.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

describe('git reader', () => {
  it('git reader answers pipelined reads in order through one process', async () => {
    t = await createTmpRepo({ 'a.txt': 'one\n' });
    const c1 = t.git('rev-parse', 'HEAD');
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'x');
    t.write('big.bin', big);
    t.write('a.txt', 'two\n');
    const c2 = t.commit('two');
    t.git('tag', '-a', '-m', 'v1', 'v1', c1);
    await withGitReader(t.root, async (reader) => {
      const names = [`${c1}:a.txt`, 'nope:a.txt', `${c2}:big.bin`, `${c2}:a.txt`, 'HEAD~1^{commit}'];
      const got = await Promise.all(names.map((n) => reader.read(n)));
      expect(got[0]!.content.toString()).toBe('one\n');
      expect(got[1]).toBeUndefined();
      expect(got[2]!.content.equals(big)).toBe(true);
      expect(got[3]!.content.toString()).toBe('two\n');
      expect(got[4]!.oid).toBe(c1);
      expect(await reader.revParse('v1')).toBe(c1);
      expect(await reader.revParse('HEAD')).toBe(c2);
      expect(await reader.revParse('no-such-branch')).toBeUndefined();
      expect(await reader.revParse('HEAD\nHEAD')).toBeUndefined();
      expect((await reader.fileAt(c2, './a.txt'))!.oid).toBe(t!.git('rev-parse', `${c2}:a.txt`));
      expect(await reader.fileAt(c2, '.')).toBeUndefined();
      await expect(reader.resolve('nope')).rejects.toThrow(/unknown revision "nope"/);
    });
  });

  it('git reader outside a repository fails each read with a one-line error', async () => {
    const reader = new GitReader('/');
    await expect(reader.read('HEAD')).rejects.toThrow(/cannot read git objects/);
    await reader.close();
  });

  it('git fileHistory streams changes with blob ids and stops git when the caller stops', async () => {
    t = await createTmpRepo({ 'f.txt': '0\n', 'other.txt': 'x\n' });
    const commits = [t.git('rev-parse', 'HEAD')];
    for (let i = 1; i <= 5; i++) {
      t.write('f.txt', `${i}\n`);
      commits.push(t.commit(`f ${i}`));
    }
    t.write('other.txt', 'y\n');
    t.commit('not f');
    t.git('rm', '-q', 'f.txt');
    const deleted = t.commit('rm f');
    const all = [];
    for await (const c of fileHistory(t.root, 'f.txt', { revs: ['HEAD'] })) all.push(c);
    expect(all.map((c) => c.commit)).toEqual([deleted, ...commits.slice().reverse()]);
    expect(all[0]!.blob).toBeUndefined();
    expect(all[1]!.blob).toBe(t.git('rev-parse', `${commits[5]}:f.txt`));
    expect(all[1]!.subject).toBe('f 5');
    expect(all[1]!.parents).toEqual([t.git('rev-parse', `${commits[5]}~1`)]);
    const first = [];
    for await (const c of fileHistory(t.root, 'f.txt', { revs: ['HEAD'] })) {
      first.push(c.commit);
      if (first.length === 2) break;
    }
    expect(first).toEqual([deleted, commits[5]]);
    const gen = fileHistory(t.root, 'f.txt', { revs: ['no-such-rev'] });
    await expect(gen.next()).rejects.toThrow(/f\.txt: cannot read its history/);
  });

  it('git fileHistory gives merges their blob through the reader', async () => {
    t = await createTmpRepo({ 'f.txt': 'base\n' });
    t.git('checkout', '-q', '-b', 'side');
    t.write('f.txt', 'side\n');
    t.commit('side');
    t.git('checkout', '-q', 'main');
    t.write('g.txt', 'main\n');
    t.commit('main');
    t.git('merge', '-q', '--no-ff', '-m', 'merge side', 'side');
    const merge = t.git('rev-parse', 'HEAD');
    await withGitReader(t.root, async (reader) => {
      const changes = [];
      for await (const c of fileHistory(t!.root, 'f.txt', { revs: ['main'], firstParent: true, reader }))
        changes.push(c);
      expect(changes[0]!.commit).toBe(merge);
      expect(changes[0]!.blob).toBe(t!.git('rev-parse', `${merge}:f.txt`));
    });
  });
});
