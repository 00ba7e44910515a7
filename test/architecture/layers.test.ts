/**
 * The dependency direction of DESIGN.md: `actions/` and `lib/cli` → `stages/` → `lib/` core.
 * Only `actions/` imports `@actions/*`; the core never imports a stage or an action; stages never
 * import an action. Every static and dynamic import specifier in the tracked sources is checked.
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"]+)\1/g;

interface Import {
  file: string;
  spec: string;
  /** Repository-relative target of a relative specifier. */
  target?: string;
}

/** Source files under `root/dir`, repository-relative, without node_modules. */
function sourcesUnder(root: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'dist') walk(child);
      } else if (/\.(ts|mts|mjs)$/.test(e.name)) out.push(child);
    }
  };
  walk(dir);
  return out.sort();
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
