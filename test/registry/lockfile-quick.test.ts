/**
 * parseLockfileQuick (js-yaml fast path for lockfiles read from history) against parseLockfile
 * (the `yaml` document parser): on every lockfile in the repository and on odd but valid
 * rewritings of them, the quick parser must give the same lockfile, or the same error.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseLockfile, parseLockfileQuick, serializeLockfile } from '../../lib/lockfile.ts';
import { syntheticLockfile } from '../support/model-history.ts';

const PROJECT = path.resolve(import.meta.dirname, '../..');

function outcome(parse: (text: string) => unknown, text: string): unknown {
  try {
    return { ok: parse(text) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function expectSame(text: string): void {
  expect(outcome(parseLockfileQuick, text), text.slice(0, 400)).toEqual(outcome(parseLockfile, text));
}

/** Every committed `*.lock.yaml` in the repository, plus generated ones. */
function fixtures(): string[] {
  const files = execFileSync('git', ['ls-files', '*.lock.yaml', '**/*.lock.yaml'], {
    cwd: PROJECT,
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean);
  const texts = files.map((f) => fs.readFileSync(path.join(PROJECT, f), 'utf8'));
  for (let i = 0; i < 3; i++) texts.push(serializeLockfile(syntheticLockfile(i)));
  return texts;
}

/** Rewritings that keep the text valid YAML (most keep the same value). */
const mutations: [string, (t: string) => string][] = [
  ['CRLF', (t) => t.replace(/\n/g, '\r\n')],
  ['BOM', (t) => `\uFEFF${t}`],
  ['comments', (t) => t.replace(/\n/g, '  # note: a comment\n')],
  ['quoted keys', (t) => t.replace(/^(\s*)([a-z_]+):/gm, '$1"$2":')],
  ['single-quoted keys', (t) => t.replace(/^(\s*)([a-z_]+):/gm, "$1'$2':")],
  ['unicode path', (t) => t.replace(/path: ([^\s,}]+)/, 'path: "données/é模型$1"')],
  ['long line', (t) => t.replace(/^schema: 1$/m, `schema: 1 # ${'x'.repeat(200_000)}`)],
  ['explicit document', (t) => `---\n${t}\n...\n`],
  ['hex size', (t) => t.replace(/size: (\d+)/, (_m, n: string) => `size: 0x${Number(n).toString(16)}`)],
  ['octal size', (t) => t.replace(/size: (\d+)/, (_m, n: string) => `size: 0o${Number(n).toString(8)}`)],
  // Not numbers in YAML 1.2 core: the full parser rejects them, so must the quick one.
  ['binary size', (t) => t.replace(/size: (\d+)/, (_m, n: string) => `size: 0b${Number(n).toString(2)}`)],
  ['underscore size', (t) => t.replace(/size: (\d)(\d+)/, 'size: $1_$2')],
  ['underscore metric', (t) => t.replace(/(accuracy: )0?\.?(\d)/, '$1$2_0')],
  ['sexagesimal size', (t) => t.replace(/size: (\d+)/, 'size: 1:$1')],
  ['yes for dir', (t) => t.replace(/nfiles: (\d+)/, 'nfiles: $1, dir: yes')],
  [
    'anchor and alias',
    (t) =>
      t
        .replace(/^(\s+)code: ([0-9a-f]{64})$/m, '$1code: &c $2')
        .replace(/^schema: 1$/m, 'schema: 1\nstale: {x: *c}'),
  ],
  ['merge key', (t) => t.replace(/^stages:$/m, 'base: &b {code: x}\nstages:')],
  ['duplicate key', (t) => t.replace(/^schema: 1$/m, 'schema: 1\nschema: 1')],
  ['tab indent', (t) => t.replace(/^ {2}/m, '\t')],
];

describe('parseLockfileQuick', () => {
  const texts = fixtures();

  it('has fixtures to compare', () => {
    expect(texts.length).toBeGreaterThanOrEqual(3);
  });

  it('agrees with parseLockfile on every fixture', () => {
    for (const text of texts) expectSame(text);
  });

  for (const [name, mutate] of mutations) {
    it(`agrees with parseLockfile on every fixture: ${name}`, () => {
      let changed = 0;
      for (const text of texts) {
        const mutated = mutate(text);
        if (mutated !== text) changed++;
        expectSame(mutated);
      }
      expect(changed, 'the mutation applies to some fixture').toBeGreaterThan(0);
    });
  }

  it('refuses nested aliases as the full parser does, without expanding them', () => {
    const h = 'a'.repeat(64);
    const lines = ['schema: 1', 'stages:', '  train:', `    code: ${h}`, '    params:'];
    lines.push('      a0: &a0 [x, x, x, x, x, x, x, x, x, x]');
    for (let i = 1; i < 9; i++)
      lines.push(
        `      a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    const text = `${lines.join('\n')}\n`;
    const started = Date.now();
    expect(outcome(parseLockfile, text)).toMatchObject({ error: expect.stringContaining('aliases') });
    expectSame(text);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
