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
  const env = process.env.LOCKSTEP_REMOTE;
  if (env) return env;
  const config = readConfig(repo);
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
  return entry.url;
}

/** Opens the default remote (relative paths resolve against the repository root), or undefined. */
export async function defaultRemote(repo: Repo): Promise<Remote | undefined> {
  const url = defaultRemoteUrl(repo);
  if (!url) return undefined;
  const { openRemote } = await import('./open-remote.ts');
  return openRemote(url, { baseDir: repo.root });
}
