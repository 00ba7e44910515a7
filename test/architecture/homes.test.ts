/**
 * One home per concept, checked over the sources of lib/ (their syntax trees, so comments and
 * type names do not count):
 * - the core names no path into stages/: which stage set runs is what the caller (lib/cli) hands
 *   it (lib/cli/pipeline-module.ts);
 * - lockfile text is parsed by the readers in lib/lockfile.ts ("the lockfile in the workspace",
 *   "the lockfile at a revision"), and by the few files below that parse text no reader can give.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT, sourcesUnder } from './sources.ts';

/** Files that parse lockfile text themselves, each for a reason no reader covers. */
const PARSES_TEXT_ITSELF: Record<string, string> = {
  'lib/lockfile.ts': 'the readers themselves',
  'lib/registry/lockfile-cache.ts': 'summaries of many committed blobs, batch-read by blob id',
  'lib/lockfile-driver.ts': 'the merge driver parses the versions git hands it as files',
  'lib/lockfile-conflict.ts': "a conflict's sides, from git's index stages or the markers",
  'lib/cli/commands/repro.ts': '--pin-inputs names a lockfile anywhere on disk',
  'lib/experiments/run.ts': "the experiment worktree's lockfile, whose text it also records",
  'lib/experiments/show.ts': 'metrics of many experiment commits, batch-read with params.yaml',
  'lib/experiments/vertex-record.ts': 'the metrics of lockfile text it is handed',
};

/**
 * Each syntax node of a file, in source order; none when its text lacks `word` (most files: only
 * those that mention it are parsed).
 */
function nodesOf(root: string, file: string, word: string): ts.Node[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  if (!text.includes(word)) return [];
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: ts.Node[] = [];
  const visit = (node: ts.Node): void => {
    out.push(node);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

const STAGES_PATH = /(?:^|\/)stages(?:\/|$)/;

/** `file:line "text"` of every string in the core (lib/ but lib/cli) that is a path into stages/. */
function stagePathsInCore(root = ROOT): string[] {
  const found: string[] = [];
  for (const file of sourcesUnder(root, 'lib')) {
    if (file.startsWith('lib/cli/')) continue;
    for (const node of nodesOf(root, file, 'stages')) {
      if (!ts.isStringLiteralLike(node) && !ts.isTemplateLiteralToken(node)) continue;
      if (ts.isLiteralTypeNode(node.parent)) continue; // Pick<Lockfile, 'stages'>: a key, not a path
      if (!STAGES_PATH.test(node.text)) continue;
      const line = node.getSourceFile().getLineAndCharacterOfPosition(node.getStart()).line + 1;
      found.push(`${file}:${line} ${JSON.stringify(node.text)}`);
    }
  }
  return found;
}

/** `file:line` of every call of parseLockfile or parseLockfileQuick under lib/ outside `allowed`. */
function lockfileParsesOutside(allowed: Record<string, string>, root = ROOT): string[] {
  const found: string[] = [];
  for (const file of sourcesUnder(root, 'lib')) {
    if (file in allowed) continue;
    for (const node of nodesOf(root, file, 'parseLockfile')) {
      if (!ts.isCallExpression(node)) continue;
      const callee = node.expression;
      const name = ts.isPropertyAccessExpression(callee) ? callee.name.text : callee.getText();
      if (name !== 'parseLockfile' && name !== 'parseLockfileQuick') continue;
      const line = node.getSourceFile().getLineAndCharacterOfPosition(node.getStart()).line + 1;
      found.push(`${file}:${line}`);
    }
  }
  return found;
}

function withTree(files: Record<string, string>, check: (root: string) => void): void {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-homes-'));
  try {
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
      fs.writeFileSync(path.join(tmp, rel), text);
    }
    check(tmp);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

describe('homes', () => {
  it('homes: the core (lib/ but lib/cli) names no path into stages/', () => {
    expect(stagePathsInCore()).toEqual([]);
  });

  it('homes: the stages/ check sees a URL, a path segment and a template, not a comment or a key type', () => {
    withTree(
      {
        'lib/deep/probe.ts': [
          '// stages/pipeline.ts is named in this comment only',
          "const own = new URL('../../stages/pipeline.ts', import.meta.url);",
          "const local = path.join(root, 'stages', 'pipeline.ts');",
          'const t = `${root}/stages/${name}`;',
          "type Stages = Pick<Lockfile, 'stages'>;",
          'const html = \' id="stages"\';',
        ].join('\n'),
        'lib/cli/ok.ts': "const own = new URL('../../stages/pipeline.ts', import.meta.url);\n",
      },
      (root) =>
        expect(stagePathsInCore(root)).toEqual([
          'lib/deep/probe.ts:2 "../../stages/pipeline.ts"',
          'lib/deep/probe.ts:3 "stages"',
          'lib/deep/probe.ts:4 "/stages/"',
        ]),
    );
  });

  it('homes: lockfile text is parsed only by its readers and the files that say why they parse it', () => {
    expect(lockfileParsesOutside(PARSES_TEXT_ITSELF)).toEqual([]);
    // Each exception still parses lockfile text; one that stopped is taken off the list.
    const stale = Object.keys(PARSES_TEXT_ITSELF).filter((file) =>
      lockfileParsesOutside({}).every((at) => !at.startsWith(`${file}:`)),
    );
    expect(stale).toEqual([]);
  });

  it('homes: the lockfile-parse check sees a direct and a namespaced call, not an import or a mention', () => {
    withTree(
      {
        'lib/deep/gc.ts': [
          "import { parseLockfile } from '../lockfile.ts';",
          "import * as lf from '../lockfile.ts';",
          '// parseLockfile(text) in a comment',
          "const a = parseLockfile(await readFileAtRev(root, commit, 'artifacts.lock.yaml'));",
          'const b = lf.parseLockfileQuick(text, label);',
          'const c = parseLockfileLater;',
        ].join('\n'),
        'lib/lockfile.ts': 'export const l = parseLockfile(text);\n',
      },
      (root) =>
        expect(lockfileParsesOutside({ 'lib/lockfile.ts': 'reader' }, root)).toEqual([
          'lib/deep/gc.ts:4',
          'lib/deep/gc.ts:5',
        ]),
    );
  });
});
