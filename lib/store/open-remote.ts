/**
 * Opens a remote from its URL: `gs://bucket/prefix` (the GCS backend, loaded only when used),
 * `file:///abs/dir`, or a plain path (relative paths resolve against `options.baseDir`, default
 * the working directory).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, formatProblem } from '../errors.ts';
import type { OpenRemoteOptions, Remote } from './remote.ts';
import { LocalRemote } from './local-remote.ts';

export interface OpenRemoteOptionsWithBase extends OpenRemoteOptions {
  /** Directory that relative paths resolve against (default: process.cwd()). */
  baseDir?: string;
}

type GcsRemoteModule = { GcsRemote: new (url: string, options: OpenRemoteOptions) => Remote };

export async function openRemote(url: string, options: OpenRemoteOptionsWithBase = {}): Promise<Remote> {
  if (url.startsWith('gs://')) {
    // Imported on first use, so the GCS client stays out of startup (a literal specifier, so the
    // compiled CLI, lib/cli/build.mjs, bundles it as a lazy chunk).
    const mod = (await import('./gcs-remote.ts')) as GcsRemoteModule;
    // The client resolves its endpoint (LOCKSTEP_GCS_ENDPOINT included) in gcs-client.ts.
    const { baseDir: _baseDir, ...rest } = options;
    return new mod.GcsRemote(url, rest);
  }
  if (url.startsWith('file://')) return new LocalRemote(fileURLToPath(url));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new ConfigError(
      formatProblem(
        'remote url',
        'unsupported scheme',
        url,
        'Use gs://bucket/prefix, file:///dir or a directory path.',
      ),
    );
  }
  if (url.trim() === '') {
    throw new ConfigError(formatProblem('remote url', 'empty', url, 'Set a gs:// URL or a directory path.'));
  }
  return new LocalRemote(path.resolve(options.baseDir ?? process.cwd(), url));
}
