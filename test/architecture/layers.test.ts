/**
 * The dependency direction of DESIGN.md: `actions/` and `lib/cli` → `stages/` → `lib/` core.
 * Only `actions/` imports `@actions/*`; the core never imports a stage or an action; stages never
 * import an action. Every static and dynamic import specifier in the tracked sources is checked.
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { ROOT, sourcesUnder } from './sources.ts';

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"]+)\1/g;

interface Import {
  file: string;
  spec: string;
  /** Repository-relative target of a relative specifier. */
  target?: string;
}

function importsOf(dir: string, root = ROOT): Import[] {
  const out: Import[] = [];
  for (const file of sourcesUnder(root, dir)) {
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    for (const m of text.matchAll(SPECIFIER)) {
      const spec = m[2]!;
      const target = spec.startsWith('.')
        ? path.posix.normalize(path.posix.join(path.posix.dirname(file), spec))
        : undefined;
      out.push({ file, spec, target });
    }
  }
  return out;
}

/** The lib/ module an import belongs to: its folder (`store`), or a root file's name (`lockfile`). */
function moduleOf(file: string): string | undefined {
  const m = /^lib\/([^/]+?)(?:\.(?:ts|mts|mjs))?(?:\/|$)/.exec(file);
  return m?.[1];
}

/**
 * The folder-level import graph of lib/ and its cycles: each strongly connected component of more
 * than one module (Tarjan), with one import per edge inside it as the evidence.
 */
function libCycles(root = ROOT): string[][] {
  const edges = new Map<string, Map<string, string>>();
  for (const i of importsOf('lib', root)) {
    const from = moduleOf(i.file);
    const to = i.target ? moduleOf(i.target) : undefined;
    if (!from || !to || from === to) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    if (!edges.get(from)!.has(to)) edges.get(from)!.set(to, `${i.file} imports ${i.spec}`);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) {
        const members = new Set(scc);
        const evidence = [...members]
          .sort()
          .flatMap((a) =>
            [...(edges.get(a) ?? [])]
              .filter(([b]) => members.has(b))
              .map(([b, why]) => `${a} -> ${b}: ${why}`),
          );
        cycles.push(evidence);
      }
    }
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

const show = (list: Import[]) => list.map((i) => `${i.file} imports ${i.spec}`);

describe('layers', () => {
  it('layers: the core (lib/ but lib/cli) imports no stage, no action and no @actions/* package', () => {
    const imports = importsOf('lib');
    expect(imports.length).toBeGreaterThan(100);
    const bad = imports.filter(
      (i) =>
        !i.file.startsWith('lib/cli/') &&
        (i.spec.startsWith('@actions/') || /^(stages|actions)\//.test(i.target ?? '')),
    );
    expect(show(bad)).toEqual([]);
  });

  it('layers: stages import no action and no @actions/* package', () => {
    const imports = importsOf('stages');
    expect(imports.length).toBeGreaterThan(50);
    const bad = imports.filter((i) => i.spec.startsWith('@actions/') || /^actions\//.test(i.target ?? ''));
    expect(show(bad)).toEqual([]);
  });

  it('layers: in lib/cli only the GitHub client glue imports @actions/*', () => {
    // lib/cli/github.ts builds the CLI's client with getOctokit (GITHUB_API_URL, proxy settings),
    // like an action entry; no other CLI code may depend on the Actions toolkit.
    const bad = importsOf('lib/cli').filter(
      (i) => i.spec.startsWith('@actions/') && i.file !== 'lib/cli/github.ts',
    );
    expect(show(bad)).toEqual([]);
  });

  it('layers: only lib/git-client.ts imports simple-git (a missing git fails there in one line)', () => {
    const bad = importsOf('lib').filter((i) => i.spec === 'simple-git' && i.file !== 'lib/git-client.ts');
    expect(show(bad)).toEqual([]);
  });

  it('layers: no two folders (or root modules) of lib/ import each other, directly or around a cycle', () => {
    expect(libCycles()).toEqual([]);
  });

  it('layers: the cycle check sees a two-folder cycle and a longer one through a root module', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-cycles-'));
    try {
      const write = (rel: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
        fs.writeFileSync(path.join(tmp, rel), text);
      };
      write('lib/a/x.ts', "import { y } from '../b/y.ts';\n");
      write('lib/b/y.ts', "export const y = await import('../a/x.ts');\n");
      write('lib/c/z.ts', "import { w } from '../w.ts';\n");
      write('lib/w.ts', "import { v } from './d/v.ts';\n");
      write('lib/d/v.ts', "import { z } from '../c/z.ts';\n");
      write('lib/e/ok.ts', "import { z } from '../c/z.ts';\n");
      const cycles = libCycles(tmp).map((c) => c.map((e) => e.split(':')[0]));
      expect(cycles).toHaveLength(2);
      expect(cycles).toContainEqual(['a -> b', 'b -> a']);
      expect(cycles).toContainEqual(['c -> w', 'd -> c', 'w -> d']);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('layers: the checker sees a violation (a core file importing a stage, statically or not)', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-layers-'));
    try {
      fs.mkdirSync(path.join(tmp, 'lib/deep'), { recursive: true });
      fs.writeFileSync(
        path.join(tmp, 'lib/deep/probe.ts'),
        "import { PATHS } from '../../stages/pipeline.ts';\nconst g = await import('@actions/github');\n",
      );
      expect(importsOf('lib', tmp)).toEqual([
        { file: 'lib/deep/probe.ts', spec: '../../stages/pipeline.ts', target: 'stages/pipeline.ts' },
        { file: 'lib/deep/probe.ts', spec: '@actions/github', target: undefined },
      ]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
