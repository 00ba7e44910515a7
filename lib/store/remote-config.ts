/**
 * The default remote: `LOCKSTEP_REMOTE`, else `remote` and `remotes.<name>.url` in
 * `.lockstep/config.yaml` (lib/config.ts reads the file; this module gives the store its remote).
 */
import type { Repo } from '../repo.ts';
import { ConfigError, formatProblem } from '../errors.ts';
import { readConfig } from '../config.ts';
import type { Remote } from './remote.ts';

/** URL of the default remote: `LOCKSTEP_REMOTE`, else the configured one; undefined if none. */
export function defaultRemoteUrl(repo: Repo): string | undefined {
  return defaultRemoteEntry(repo)?.url;
}

/** The default remote's URL and endpoint (`LOCKSTEP_REMOTE` overrides the URL only). */
export function defaultRemoteEntry(repo: Repo): { url: string; endpoint?: string } | undefined {
  const env = process.env.LOCKSTEP_REMOTE;
  const config = readConfig(repo);
  const named = config.remote ? config.remotes[config.remote] : undefined;
  if (env) return { url: env, ...(named?.endpoint ? { endpoint: named.endpoint } : {}) };
  if (!config.remote) return undefined;
  const entry = config.remotes[config.remote];
  if (!entry) {
    throw new ConfigError(
      formatProblem(
        '.lockstep/config.yaml: remote',
        'names no entry of remotes',
        config.remote,
        `Add remotes.${config.remote}.url or fix the name.`,
      ),
    );
  }
  return entry;
}

/** Opens the default remote (relative paths resolve against the repository root), or undefined. */
export async function defaultRemote(repo: Repo): Promise<Remote | undefined> {
  const entry = defaultRemoteEntry(repo);
  if (!entry) return undefined;
  const { openRemote } = await import('./open-remote.ts');
  return openRemote(entry.url, {
    baseDir: repo.root,
    ...(entry.endpoint ? { apiEndpoint: entry.endpoint } : {}),
  });
}
