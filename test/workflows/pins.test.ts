/**
 * Every third-party action is pinned to a full commit SHA with its release in a comment
 * (`uses: actions/checkout@<40 hex> # v7.0.1`), in every workflow and every action.yml; local
 * `./actions/x` steps stay as they are. Dependabot keeps the pins and the npm dependencies current.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = path.resolve(import.meta.dirname, '../..');

/** Every workflow and action.yml of the repository, relative to the root. */
function pinnedFiles(): string[] {
  const workflows = readdirSync(path.join(root, '.github/workflows'))
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => `.github/workflows/${f}`);
  const actions = readdirSync(path.join(root, 'actions'))
    .map((d) => `actions/${d}/action.yml`)
    .filter((f) => existsSync(path.join(root, f)));
  return [...workflows, ...actions].sort();
}

interface Use {
  file: string;
  uses: string;
  /** The version comment on the same line, if any. */
  comment?: string;
}

/** The `uses:` of every step (and reusable-workflow job) of one workflow or action.yml. */
function usesOf(file: string, text: string): Use[] {
  const doc = parse(text) as {
    jobs?: Record<string, { uses?: string; steps?: { uses?: string }[] }>;
    runs?: { steps?: { uses?: string }[] };
  };
  const refs = [
    ...Object.values(doc.jobs ?? {}).flatMap((j) => [j.uses, ...(j.steps ?? []).map((s) => s.uses)]),
    ...(doc.runs?.steps ?? []).map((s) => s.uses),
  ].filter((u): u is string => typeof u === 'string');
  const lines = text.split('\n');
  return refs.map((uses) => {
    const line = lines.find((l) => l.replace(/['"]/g, '').includes(`uses: ${uses}`));
    return { file, uses, comment: /#\s*(\S+)/.exec(line?.split(uses)[1] ?? '')?.[1] };
  });
}

/** Problems of one `uses:`: a third-party action not pinned to a SHA, or without its version comment. */
function pinProblem(u: Use): string | undefined {
  if (u.uses.startsWith('./')) return undefined;
  if (u.uses.startsWith('docker://'))
    return /@sha256:[0-9a-f]{64}$/.test(u.uses)
      ? undefined
      : `${u.file}: container action not pinned by digest "${u.uses}". Use docker://image@sha256:<digest>.`;
  const m = /^([\w.-]+\/[\w.-]+)(\/[\w./-]+)?@(.+)$/.exec(u.uses);
  if (!m) return `${u.file}: unreadable uses "${u.uses}". Write owner/repo@<sha>.`;
  if (!/^[0-9a-f]{40}$/.test(m[3]))
    return `${u.file}: ${m[1]} not pinned to a commit SHA "${m[3]}". Pin it: ${m[1]}@<40-hex sha> # <version>.`;
  if (!u.comment || !/^v\d+(\.\d+){0,2}$/.test(u.comment))
    return `${u.file}: ${m[1]}@${m[3].slice(0, 12)} has no version comment. Add "# vX.Y.Z" after it.`;
  return undefined;
}

const all = pinnedFiles().flatMap((f) => usesOf(f, readFileSync(path.join(root, f), 'utf8')));

describe('pinned actions', () => {
  it('workflows and actions use third-party actions (the scan reads them)', () => {
    expect(all.filter((u) => !u.uses.startsWith('./')).length).toBeGreaterThan(20);
    expect(all.some((u) => u.file === 'actions/setup/action.yml' && u.uses.startsWith('actions/'))).toBe(
      true,
    );
  });

  it('every third-party uses: is pinned to a full commit SHA with its version in a comment', () => {
    expect(all.map(pinProblem).filter(Boolean)).toEqual([]);
  });

  it('one action is pinned to one SHA and one version everywhere', () => {
    const seen = new Map<string, Set<string>>();
    for (const u of all.filter((x) => !x.uses.startsWith('./'))) {
      const [name, sha] = u.uses.split('@');
      const repo = name.split('/').slice(0, 2).join('/');
      seen.set(repo, (seen.get(repo) ?? new Set()).add(`${sha} # ${u.comment}`));
    }
    const multiple = [...seen]
      .filter(([, pins]) => pins.size > 1)
      .map(([repo, pins]) => `${repo}: ${[...pins]}`);
    expect(multiple).toEqual([]);
  });

  it.each([
    ['.github/workflows/x.yml', 'actions/checkout@v4', undefined, /not pinned to a commit SHA "v4"/],
    [
      '.github/workflows/x.yml',
      'actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af68',
      'v4',
      /not pinned/,
    ],
    ['actions/x/action.yml', `actions/cache/save@${'a'.repeat(40)}`, undefined, /no version comment/],
    ['.github/workflows/x.yml', 'docker://node:20', undefined, /not pinned by digest/],
  ] as const)('the pin check refuses %s uses: %s', (file, uses, comment, problem) => {
    expect(pinProblem({ file, uses, comment })).toMatch(problem);
  });

  it('the scan finds steps, reusable-workflow jobs and composite steps with their comments', () => {
    const sha = 'b'.repeat(40);
    const text = `jobs:\n  a:\n    uses: org/repo/.github/workflows/w.yml@main\n  b:\n    steps:\n      - uses: ./actions/setup\n      - uses: 'actions/checkout@${sha}' # v7.0.1\n`;
    const found = usesOf('w.yml', text);
    expect(found.map((u) => [u.uses, u.comment])).toEqual([
      ['org/repo/.github/workflows/w.yml@main', undefined],
      ['./actions/setup', undefined],
      [`actions/checkout@${sha}`, 'v7.0.1'],
    ]);
    expect(found.map(pinProblem).filter(Boolean)).toHaveLength(1);
  });
});

describe('dependabot', () => {
  it('Dependabot updates the action pins (workflows and actions/*) and the npm dependencies', () => {
    const config = parse(readFileSync(path.join(root, '.github/dependabot.yml'), 'utf8')) as {
      version: number;
      updates: { 'package-ecosystem': string; directory?: string; directories?: string[] }[];
    };
    expect(config.version).toBe(2);
    const dirs = (eco: string) =>
      config.updates
        .filter((u) => u['package-ecosystem'] === eco)
        .flatMap((u) => [...(u.directories ?? []), ...(u.directory ? [u.directory] : [])]);
    expect(dirs('github-actions')).toEqual(expect.arrayContaining(['/', '/actions/*']));
    expect(dirs('npm')).toEqual(['/']);
  });
});
