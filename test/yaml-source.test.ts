import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../lib/cli/main.ts';
import { readConfig } from '../lib/config.ts';
import { ConfigError, ConfigProblems } from '../lib/errors.ts';
import { memoryOutput } from '../lib/output.ts';
import { loadParams, parseParams } from '../lib/params.ts';
import { parsePolicy, readPolicy } from '../lib/environment/policy.ts';
import { parseLockfile } from '../lib/lockfile.ts';
import { quickYamlValue } from '../lib/yaml-source.ts';
import { parseProvenance } from '../lib/registry/provenance.ts';
import { parsePredictions } from '../lib/slices/predictions.ts';
import { createTmpRepo, type TmpRepo } from './support/tmp-repo.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

/** Reads `text` as a repository's .lockstep/config.yaml (a fresh folder, no local file). */
function readConfigFrom(text: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-config-'));
  try {
    fs.writeFileSync(path.join(dir, 'config.yaml'), text);
    return readConfig({ configPath: path.join(dir, 'config.yaml'), stateDir: dir } as never);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function caught(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

// Nine copies at each of five levels: 59,049 leaves from a 5-line file.
const ALIAS_BOMB = [
  'a: &a [x, x, x, x, x, x, x, x, x]',
  'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
  'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
  'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
  'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
  '',
].join('\n');

describe('configuration files (lib/yaml-source.ts)', () => {
  it('several unknown keys in one mapping are each reported on their own line', () => {
    const err = caught(() =>
      parseParams('train:\n  epochz: 3\n  lrr: 0.1\n  epochs: 2\nbogus: 1\nbogus2: 2\n', 'params.yaml'),
    );
    expect(err).toBeInstanceOf(ConfigProblems);
    const lines = (err as ConfigProblems).lines.map((l) => l.split(' ').slice(0, 2).join(' '));
    expect(lines).toEqual([
      'params.yaml:2: train.epochz:',
      'params.yaml:3: train.lrr:',
      'params.yaml:5: bogus:',
      'params.yaml:6: bogus2:',
    ]);
  });

  it('duplicate keys are reported with every other mistake, each on its own line', () => {
    const err = caught(() =>
      parseParams(
        'train:\n  epochs: 3\n  lr: fast\n  epochs: 4\ndata: { seed: 1, seed: 2 }\nbogus: 1\n',
        'params.yaml',
      ),
    );
    expect(err).toBeInstanceOf(ConfigProblems);
    expect((err as ConfigProblems).lines).toEqual([
      'params.yaml:3: train.lr: expected number, got "fast". Fix the value.',
      'params.yaml:4: train.epochs: duplicate key "epochs" (first on line 2). Keep one of them.',
      'params.yaml:5: data.seed: duplicate key "seed" (first on line 5). Keep one of them.',
      'params.yaml:6: bogus: unknown key "bogus". Remove it or check the spelling (known: data, ingest, validate, featurize, train, evaluate, gate, monitor, tune).',
    ]);
  });

  it('a mapping with 100,000 keys is read in linear time (duplicate keys checked once)', () => {
    const text = 'junk:\n' + Array.from({ length: 100_000 }, (_, i) => `  k${i}: ${i}\n`).join('');
    const started = performance.now();
    const err = caught(() => parseParams(text, 'params.yaml'));
    const ms = performance.now() - started;
    expect((err as ConfigProblems).lines).toEqual([
      expect.stringMatching(/^params\.yaml:1: junk: unknown key/),
    ]);
    // Quadratic duplicate detection took over a minute here; linear takes well under a second.
    expect(ms).toBeLessThan(30_000);
  });

  it('a YAML alias bomb is a one-line ConfigError naming the file, not an exhausted process', async () => {
    const err = caught(() => parseParams(ALIAS_BOMB, 'params.yaml'));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/^params\.yaml: YAML aliases expand too far/);
    expect(err.message).not.toContain('\n');
    t = await createTmpRepo({ 'promotion/dev.yaml': ALIAS_BOMB });
    await expect(readPolicy(t.root, 'dev')).rejects.toThrow(
      /^promotion\/dev\.yaml: YAML aliases expand too far/,
    );
  });

  it('a policy reads as the yaml package reads it, where js-yaml would read it otherwise', () => {
    // js-yaml's core schema takes 1_000 and 0b11 as numbers and yes as a string like YAML 1.2;
    // the yaml package reads the first two as strings, which the schema refuses at their line.
    expect(() => parsePolicy('branch: dev\nendpoint:\n  kind: local\n  port: 1_000\n', 'p.yaml')).toThrow(
      /^p\.yaml:4: endpoint\.port: expected number, got "1_000"/,
    );
    expect(() => parsePolicy('branch: dev\nendpoint:\n  kind: local\n  port: 0b11\n', 'p.yaml')).toThrow(
      /^p\.yaml:4: endpoint\.port: expected number/,
    );
    expect(parsePolicy('branch: dev\nendpoint:\n  kind: local\n  port: 0x10\n', 'p.yaml').endpoint).toEqual({
      kind: 'local',
      port: 16,
    });
    expect(parsePolicy('branch: yes\n', 'p.yaml').branch).toBe('yes');
    // A rule's problem (not a schema one) is still reported at its line.
    expect(() =>
      parsePolicy(
        'branch: dev\nendpoint:\n  kind: local\nmonitoring:\n  vertex:\n    email: [a@example.com]\n',
        'p.yaml',
      ),
    ).toThrow(/^p\.yaml:5: monitoring\.vertex: needs a Vertex AI endpoint/);
  });

  it('a policy js-yaml would accept differently (tags, directives, null or collection keys, long keys) reads as the yaml package reads it', () => {
    const rates = (key: string) =>
      parsePolicy(`branch: dev\nserving:\n  anomaly_rates:\n    ${key}: 0.1\n`, 'p.yaml').serving
        .anomaly_rates;
    expect(rates('~')).toEqual({ '': 0.1 });
    expect(rates('null')).toEqual({ '': 0.1 });
    expect(rates('[a, b]')).toEqual({ '[ a, b ]': 0.1 });
    expect(rates('{a: 1}')).toEqual({ '{ a: 1 }': 0.1 });
    expect(rates('? clipped\n    ')).toEqual({ clipped: 0.1 });
    // The yaml package reads `!!float 0` as the string "0" (no dot), js-yaml as the number 0.
    expect(() => parsePolicy('branch: dev\nserving:\n  max_anomaly_rate: !!float 0\n', 'p.yaml')).toThrow(
      /^p\.yaml:3: serving\.max_anomaly_rate: expected number, got "0"/,
    );
    // Under %YAML 1.1 `on` is a boolean; js-yaml keeps the 1.2 schema and would read a string.
    expect(() => parsePolicy('%YAML 1.1\n---\nbranch: dev\nremote: on\n', 'p.yaml')).toThrow(
      /^p\.yaml:4: remote: expected string/,
    );
    expect(() =>
      parsePolicy(`branch: dev\nserving:\n  anomaly_rates:\n    ${'k'.repeat(1100)}: 0.1\n`, 'p.yaml'),
    ).toThrow(/^p\.yaml:4: invalid YAML: The : indicator must be at most 1024 chars/);
    // A long value is no long key: js-yaml still reads it (a lockfile's long command line).
    expect(quickYamlValue(`branch: ${'v'.repeat(5000)}\nremote: x\n`)?.value).toEqual({
      branch: 'v'.repeat(5000),
      remote: 'x',
    });
    expect(quickYamlValue(`a: 1\n${'k'.repeat(1100)}: 2\n`)).toBeUndefined();
  });

  it('a policy js-yaml would read but the yaml package refuses or reads otherwise is what the yaml package says', () => {
    // A carriage return alone is a line break to js-yaml, text to the yaml package.
    expect(() => parsePolicy('branch: dev\rremote: x\n', 'p.yaml')).toThrow(/^p\.yaml:1: /);
    // `---#` is a document start and a comment to js-yaml, a key or an error to the yaml package.
    expect(() => parsePolicy('---# policy\nbranch: dev\n', 'p.yaml')).toThrow(/^p\.yaml:1: invalid YAML: /);
    // A comment run into a closing bracket, and a flow collection's next line not indented.
    expect(() => parsePolicy('branch: dev\ncanary:\n  steps: [10, 100]#\n', 'p.yaml')).toThrow(
      /^p\.yaml:3: invalid YAML: Comments must be separated/,
    );
    expect(() => parsePolicy('branch: dev\ncanary:\n  steps: [10,\n100]\n', 'p.yaml')).toThrow(
      /^p\.yaml:\d+: invalid YAML: Flow sequence in block collection must be sufficiently indented/,
    );
    // Lenient js-yaml: two anchors on a node, a tab as indentation, a string over lines under a key.
    expect(() => parsePolicy('branch: &a &b dev\n', 'p.yaml')).toThrow(/^p\.yaml:1: invalid YAML: /);
    expect(() => parsePolicy('branch: dev\ncanary:\n\tsteps: [100]\n', 'p.yaml')).toThrow(/^p\.yaml:3: /);
    expect(() => parsePolicy('branch: "dev\nx"\n', 'p.yaml')).toThrow(
      /^p\.yaml:1: invalid YAML: Missing closing "quote/,
    );
    // Indented enough, both read the same list.
    expect(parsePolicy('branch: dev\ncanary:\n  steps: [10,\n    100]\n', 'p.yaml').canary.steps).toEqual([
      10, 100,
    ]);
  });

  it('a policy that is a scalar names the top level rather than an empty key', async () => {
    t = await createTmpRepo({ 'promotion/dev.yaml': '42\n' });
    await expect(readPolicy(t.root, 'dev')).rejects.toThrow(
      /^promotion\/dev\.yaml:1: \(top level\): expected object/,
    );
  });

  it('a directory in place of params.yaml, a policy or .lockstep/config.yaml is a one-line ConfigError', async () => {
    t = await createTmpRepo({});
    fs.mkdirSync(path.join(t.root, 'params.yaml'));
    fs.mkdirSync(path.join(t.root, 'promotion/dev.yaml'), { recursive: true });
    fs.mkdirSync(path.join(t.root, '.lockstep/config.yaml'), { recursive: true });
    expect(caught(() => loadParams(t!.repo)).message).toBe(
      'params.yaml: is a directory, not a file. Replace it with a YAML file.',
    );
    expect(caught(() => readConfig(t!.repo))).toBeInstanceOf(ConfigError);
    expect(caught(() => readConfig(t!.repo)).message).toMatch(/^\.lockstep\/config\.yaml: is a directory/);
    await expect(readPolicy(t.root, 'dev')).rejects.toThrow(/^promotion\/dev\.yaml: is a directory/);
  });

  it('lockstep with many mistakes in params.yaml prints every one as file:line, exits 1 and writes nothing', async () => {
    t = await createTmpRepo({
      'params.yaml': 'train:\n  epochz: 3\n  lr: fast\n  foo: 1\n  foo: 2\ngate:\n  bogus: true\nbogus2: 2\n',
    });
    const before = t.git('status', '--porcelain', '--ignored');
    const o = memoryOutput();
    const code = await main(['-C', t.root, 'repro'], o);
    expect(code).toBe(1);
    const err = o.stderr.join('\n').split('\n');
    expect(err.map((l) => l.match(/^lockstep: params\.yaml:(\d+): /)?.[1])).toEqual([
      '2',
      '3',
      '4',
      '5',
      '7',
      '8',
    ]);
    expect(t.git('status', '--porcelain', '--ignored')).toBe(before);
  });

  // One formatter for every file kind: each mistake is its own `<file>:<line>: <key>: ...` line.
  it.each([
    {
      kind: 'params.yaml',
      parse: (text: string) => parseParams(text, 'params.yaml'),
      text: 'train:\n  epochs: ten\n  lr: 3\ndata:\n  speakrs: 4\n',
      lines: ['params.yaml:2: train.epochs:', 'params.yaml:3: train.lr:', 'params.yaml:5: data.speakrs:'],
    },
    {
      kind: 'promotion policy',
      parse: (text: string) => parsePolicy(text, 'promotion/staging.yaml'),
      text: 'branch: staging\nallow_retrain: maybe\ngate:\n  thresholds: []\nlogz: x\n',
      lines: [
        'promotion/staging.yaml:2: allow_retrain:',
        'promotion/staging.yaml:4: gate.thresholds:',
        'promotion/staging.yaml:5: logz:',
      ],
    },
    {
      kind: '.lockstep/config.yaml',
      parse: (text: string) => readConfigFrom(text),
      text: 'remote: r\nremotes:\n  r:\n    url: 7\n    endpoint: ftp://x\nbogus: 1\n',
      lines: [
        '.lockstep/config.yaml:4: remotes.r.url:',
        '.lockstep/config.yaml:5: remotes.r.endpoint:',
        '.lockstep/config.yaml:6: bogus:',
      ],
    },
    {
      kind: 'lockfile',
      parse: (text: string) => parseLockfile(text),
      text: 'schema: 1\ndata: 3\nstages: {}\nextra: true\n',
      lines: ['artifacts.lock.yaml:2: data:', 'artifacts.lock.yaml:4: extra:'],
    },
    {
      kind: 'predictions.json (a JSON document)',
      parse: (text: string) => parsePredictions(text, 'out/eval/predictions.json'),
      text: '{\n  "labels": 3,\n  "clips": "none",\n  "bogus": 1\n}\n',
      lines: [
        'out/eval/predictions.json:2: labels:',
        'out/eval/predictions.json:3: clips:',
        'out/eval/predictions.json:4: bogus:',
      ],
    },
    {
      kind: 'provenance statement (a JSON document)',
      parse: (text: string) => parseProvenance(text, 'provenance.json'),
      text: '{\n  "_type": "x",\n  "subject": 1,\n  "predicateType": 2\n}\n',
      lines: [
        'provenance.json:2: _type:',
        'provenance.json:3: subject:',
        'provenance.json:4: predicateType:',
      ],
    },
  ])('$kind with several mistakes reports one line per mistake with its line', ({ parse, text, lines }) => {
    const err = caught(() => parse(text));
    expect(err).toBeInstanceOf(ConfigProblems);
    const got = (err as ConfigProblems).lines;
    for (const line of got) expect(line).toMatch(/^[^:]+:\d+: [^:]+: .+\. .+\.$/);
    const heads = got.map((l) => l.split(' ').slice(0, 2).join(' '));
    for (const head of lines) expect(heads).toContain(head);
  });
});
