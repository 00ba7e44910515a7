/**
 * Model provenance through the CLI on a real git history: `lockstep provenance <ref> --out`
 * writes an in-toto Statement v1 / SLSA Provenance v1 whose subject is the model's manifest hash
 * and whose materials are the commit, data, params and lock entry; `lockstep verify <ref>
 * --provenance` passes it offline and fails a tampered subject or material, or another ref,
 * with one line per mismatch naming the field.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import {
  buildProvenance,
  parseProvenance,
  PREDICATE_TYPE,
  provenanceMismatches,
  STATEMENT_TYPE,
  type Provenance,
} from '../../lib/registry/provenance.ts';
import {
  buildModelHistory,
  modelHash,
  syntheticLockfile,
  type ModelHistory,
} from '../support/model-history.ts';

let dir: string;
let h: ModelHistory;

async function cli(...args: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', dir, ...args], o);
  return { code, out: o.stdout, err: o.stderr.join('\n') };
}

const statementFile = () => path.join(dir, 'provenance.json');
const read = (): Provenance => JSON.parse(fs.readFileSync(statementFile(), 'utf8')) as Provenance;
const write = (s: Provenance) => fs.writeFileSync(statementFile(), JSON.stringify(s, null, 2));
const material = (s: Provenance, name: string) =>
  s.predicate.buildDefinition.resolvedDependencies.find((d) => d.name === name)!;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-provenance-'));
  h = buildModelHistory(dir, { commits: 3 });
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('provenance', () => {
  it('provenance --out writes an in-toto SLSA statement: subject the model manifest hash, materials commit, data, params, lock entry', async () => {
    const res = await cli('provenance', h.dev[2], '--out', 'provenance.json');
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    expect(res.out).toEqual([
      `wrote provenance.json: out/model sha256:${modelHash(2).slice(0, 12)}, 4 materials`,
    ]);
    const s = read();
    expect(s._type).toBe(STATEMENT_TYPE);
    expect(s.predicateType).toBe(PREDICATE_TYPE);
    expect(s.subject).toEqual([{ name: 'out/model', digest: { sha256: modelHash(2) } }]);
    const names = s.predicate.buildDefinition.resolvedDependencies.map((d) => d.name);
    expect(names).toEqual(['commit', 'data:out/data/demo', 'params', 'lock:train']);
    expect(material(s, 'commit').digest).toEqual({ gitCommit: h.dev[2] });
    const lock = syntheticLockfile(2);
    expect(material(s, 'data:out/data/demo').digest.sha256).toBe(lock.stages.data.outs[0].hash);
    expect(material(s, 'params').annotations).toMatchObject({
      values: { 'train.epochs': lock.stages.train.params['train.epochs'], 'featurize.n_mfcc': 20 },
    });
    expect(material(s, 'lock:train').annotations).toMatchObject({ code: lock.stages.train.code });
    // The same schema reads what was written.
    expect(parseProvenance(fs.readFileSync(statementFile(), 'utf8'), 'provenance.json')).toEqual(s);
  });

  it('verify --provenance passes the statement of the same ref, offline', async () => {
    await cli(
      'provenance',
      'dev',
      '--out',
      'provenance.json',
      '--image',
      `r/lockstep@sha256:${'c'.repeat(64)}`,
    );
    expect(material(read(), 'image').digest).toEqual({ sha256: 'c'.repeat(64) });
    const res = await cli('verify', 'dev', '--provenance', 'provenance.json');
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    expect(res.out.at(-1)).toMatch(/^provenance matches: provenance\.json is the model of dev/);
  });

  it.each([
    [
      'subject digest',
      (s: Provenance): void => {
        s.subject[0].digest.sha256 = 'f'.repeat(64);
      },
      [/^provenance\.json: subject\[0\]\.digest\.sha256: "f{64}", the lockfile says "[0-9a-f]{64}"$/],
    ],
    [
      'data material',
      (s: Provenance): void => {
        material(s, 'data:out/data/demo').digest.sha256 = '0'.repeat(64);
      },
      [
        /^provenance\.json: predicate\.buildDefinition\.resolvedDependencies\[data:out\/data\/demo\]\.digest\.sha256: "0{64}"/,
      ],
    ],
    [
      'param value',
      (s: Provenance): void =>
        void ((material(s, 'params').annotations!.values as Record<string, unknown>)['train.lr'] = 0.5),
      [/resolvedDependencies\[params\]\.annotations: differ from the lockfile's$/],
    ],
    [
      'dropped lock entry',
      (s: Provenance): void =>
        void (s.predicate.buildDefinition.resolvedDependencies =
          s.predicate.buildDefinition.resolvedDependencies.filter((d) => d.name !== 'lock:train')),
      [/resolvedDependencies\[lock:train\]: missing, the lockfile has it$/],
    ],
  ] as const)('verify --provenance fails a tampered %s, naming the field', async (_what, tamper, lines) => {
    await cli('provenance', 'dev', '--out', 'provenance.json');
    const s = read();
    tamper(s);
    write(s);
    const res = await cli('verify', 'dev', '--provenance', 'provenance.json');
    expect(res.code).toBe(1);
    expect(res.out).toHaveLength(lines.length);
    lines.forEach((line, i) => expect(res.out[i]).toMatch(line));
    expect(res.err).toMatch(
      /^lockstep: verify dev: provenance\.json does not match the lockfile at [0-9a-f]{8} \(1 mismatch\)\./,
    );
  });

  it('verify --provenance fails the statement of another ref: the commit and every changed material', async () => {
    await cli('provenance', h.dev[1], '--out', 'provenance.json');
    const res = await cli('verify', h.dev[2], '--provenance', 'provenance.json');
    expect(res.code).toBe(1);
    expect(res.out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^provenance\.json: subject\[0\]\.digest\.sha256: /),
        `provenance.json: predicate.buildDefinition.resolvedDependencies[commit].digest.gitCommit: "${h.dev[1]}", the lockfile says "${h.dev[2]}"`,
      ]),
    );
  });

  it('verify --provenance refuses a file that is not a statement, one line per problem', async () => {
    fs.writeFileSync(statementFile(), JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1' }));
    const res = await cli('verify', 'dev', '--provenance', 'provenance.json');
    expect(res.code).toBe(1);
    const lines = res.err.split('\n');
    expect(lines.map((l) => l.match(/^lockstep: provenance\.json:1: ([\w.]+): /)?.[1]).sort()).toEqual([
      '_type',
      'predicate',
      'predicateType',
      'subject',
    ]);
    for (const line of lines)
      expect(line).toMatch(/write it with lockstep provenance <ref> --out provenance\.json\.$/);
  });

  it('verify --provenance refuses a huge file or a directory before reading it, in one line', async () => {
    fs.writeFileSync(statementFile(), '');
    fs.truncateSync(statementFile(), 17 * 1024 * 1024); // sparse: no 17 MiB written
    const res = await cli('verify', 'dev', '--provenance', 'provenance.json');
    expect(res.code).toBe(1);
    expect(res.err).toMatch(
      /^lockstep: provenance\.json: too large for a provenance statement \(17825792 bytes, at most 16777216\)\. Pass the statement/,
    );
    fs.mkdirSync(path.join(dir, 'statements'));
    const d = await cli('verify', 'dev', '--provenance', 'statements');
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/^lockstep: statements: (not a regular file|cannot read \(EISDIR\))\./);
    expect(d.err.split('\n')).toHaveLength(1);
  });

  it('provenanceMismatches is empty for its own statement and an --image is not compared', () => {
    const lock = syntheticLockfile(0);
    const s = buildProvenance('a'.repeat(40), lock, { image: `r@sha256:${'b'.repeat(64)}` });
    expect(provenanceMismatches(s, 'a'.repeat(40), lock)).toEqual([]);
    expect(() => buildProvenance('a'.repeat(40), lock, { image: 'r:latest' })).toThrow(
      /^--image: not pinned by digest "r:latest"\./,
    );
  });

  it('provenanceMismatches names a material listed twice, even when one copy matches', () => {
    const lock = syntheticLockfile(0);
    const commit = 'a'.repeat(40);
    const s = buildProvenance(commit, lock);
    const deps = s.predicate.buildDefinition.resolvedDependencies;
    // A forged commit placed before the real one, which a verifier reading the first would trust.
    deps.unshift({ name: 'commit', digest: { gitCommit: 'f'.repeat(40) } });
    expect(provenanceMismatches(s, commit, lock)).toEqual([
      'predicate.buildDefinition.resolvedDependencies[commit]: listed 2 times, expected once',
    ]);
  });
});
