/**
 * Git tags in GTO's format, written on promotion so GTO users can read this registry:
 * `<name>@v<semver>` registers a version on a commit, `<name>#<env>#<n>` assigns it to an
 * environment (the n-th assignment of that environment). Both are annotated tags.
 */
import { gitClient } from '../git-client.ts';

/** The artifact name used in tags. */
export const MODEL_NAME = 'speech-emotion';

export interface GtoTags {
  version: string;
  versionTag: string;
  stageTag: string;
  /** True when this call created the version tag (false: the commit already had one). */
  registered: boolean;
}

function parseSemver(v: string): [number, number, number] | undefined {
  const m = /^v(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Compares semver triples. */
function cmp(a: [number, number, number], b: [number, number, number]): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** The version tag already on `commit`, if any. */
export async function versionOf(
  root: string,
  commit: string,
  name = MODEL_NAME,
): Promise<string | undefined> {
  const tags = (await gitClient(root).raw(['tag', '--points-at', commit, '--list', `${name}@v*`]))
    .split('\n')
    .filter(Boolean);
  const versions = tags.map((t) => t.slice(name.length + 1)).filter((v) => parseSemver(v));
  versions.sort((a, b) => cmp(parseSemver(b)!, parseSemver(a)!));
  return versions[0];
}

/** The next minor version after every existing `<name>@v*` tag (v0.1.0 first). */
export async function nextVersion(root: string, name = MODEL_NAME): Promise<string> {
  const tags = (await gitClient(root).raw(['tag', '--list', `${name}@v*`])).split('\n').filter(Boolean);
  let best: [number, number, number] = [0, 0, 0];
  for (const t of tags) {
    const v = parseSemver(t.slice(name.length + 1));
    if (v && cmp(v, best) > 0) best = v;
  }
  return `v${best[0]}.${best[1] + 1}.0`;
}

/**
 * Registers `commit` as a version (unless it already is one) and assigns it to `env`.
 * Tag messages follow GTO's wording.
 */
export async function writeGtoTags(
  root: string,
  commit: string,
  env: string,
  name = MODEL_NAME,
): Promise<GtoTags> {
  const git = gitClient(root);
  let version = await versionOf(root, commit, name);
  let registered = false;
  if (!version) {
    version = await nextVersion(root, name);
    await git.raw([
      'tag',
      '-a',
      `${name}@${version}`,
      commit,
      '-m',
      `Registering artifact ${name} version ${version}`,
    ]);
    registered = true;
  }
  const existing = (await git.raw(['tag', '--list', `${name}#${env}#*`])).split('\n').filter(Boolean);
  const n = existing.reduce((max, t) => Math.max(max, Number(t.split('#')[2]) || 0), 0) + 1;
  const stageTag = `${name}#${env}#${n}`;
  await git.raw([
    'tag',
    '-a',
    stageTag,
    commit,
    '-m',
    `Assigning stage ${env} to artifact ${name} version ${version}`,
  ]);
  return { version, versionTag: `${name}@${version}`, stageTag, registered };
}
