/**
 * What the registry reads from a committed lockfile (the model it pins, the headline metrics,
 * the gate verdict), kept in `.lockstep/lockfile-cache.json` keyed by git blob id. A blob id is
 * the hash of the file's bytes, so an entry can never go stale: a rewritten branch points at
 * other blobs, and those are read afresh. Writes are whole-file and atomic (temp + rename) after
 * merging what other processes wrote meanwhile, so concurrent commands at worst redo some work.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import type { GitReader } from '../git-reader.ts';
import { LOCKFILE_NAME, LOCKFILE_SCHEMA, parseLockfile } from '../lockfile.ts';
import { artifactRefSchema } from '../lockfile.ts';
import { writeFileAtomic } from '../store/atomic.ts';
import type { ArtifactRef, Lockfile } from '../types.ts';

/** Which stage outputs make "the model" and "its metrics". Defaults match `lib/paths.ts`. */
export interface RegistryLayout {
  /** Repository-relative path of the model directory (an out of some stage). */
  modelPath: string;
  /** Stage whose lockfile `metrics` are the model's headline metrics. */
  metricsStage: string;
  /** Stage whose metrics carry the gate verdict (`passed`: 1 or 0). */
  gateStage: string;
}

export const DEFAULT_LAYOUT: RegistryLayout = {
  modelPath: 'out/model',
  metricsStage: 'evaluate',
  gateStage: 'gate',
};

export type GateState = 'passed' | 'failed' | 'unknown';

/** The registry's view of one lockfile. */
export interface LockfileSummary {
  /** The model artifact it pins, if any. */
  model?: ArtifactRef;
  metrics: Record<string, number>;
  gate: GateState;
  /** Set when the committed file does not parse: the one-line reason. Such a lockfile pins nothing. */
  invalid?: string;
}

/** The model artifact a lockfile pins, if any. */
export function modelOf(
  lockfile: Lockfile,
  layout: RegistryLayout = DEFAULT_LAYOUT,
): ArtifactRef | undefined {
  for (const entry of Object.values(lockfile.stages)) {
    const out = entry.outs.find((o) => o.path === layout.modelPath);
    if (out) return out;
  }
  return undefined;
}

/** The headline metrics and gate verdict a lockfile records. */
export function metricsOf(
  lockfile: Lockfile,
  layout: RegistryLayout = DEFAULT_LAYOUT,
): { metrics: Record<string, number>; gate: GateState } {
  const metrics = lockfile.stages[layout.metricsStage]?.metrics ?? {};
  const passed = lockfile.stages[layout.gateStage]?.metrics?.passed;
  const gate = passed === undefined ? 'unknown' : passed >= 1 ? 'passed' : 'failed';
  return { metrics, gate };
}

/** The registry's view of a parsed lockfile. */
export function summarizeLockfile(
  lockfile: Lockfile,
  layout: RegistryLayout = DEFAULT_LAYOUT,
): LockfileSummary {
  const model = modelOf(lockfile, layout);
  return { ...(model ? { model } : {}), ...metricsOf(lockfile, layout) };
}

/** Bump when what a summary holds, or how it is computed, changes: older files are then ignored. */
const CACHE_FORMAT = 1;
const CACHE_FILE = 'lockfile-cache.json';

const summarySchema = z
  .object({
    model: artifactRefSchema.optional(),
    metrics: z.record(z.string(), z.number()),
    gate: z.enum(['passed', 'failed', 'unknown']),
    invalid: z.string().optional(),
  })
  .strict();

interface CacheFile {
  format: number;
  /** The lockfile schema and layout the summaries were computed under. */
  key: string;
  lockfiles: Record<string, unknown>;
}

function cacheKey(layout: RegistryLayout): string {
  return JSON.stringify([LOCKFILE_SCHEMA, layout.modelPath, layout.metricsStage, layout.gateStage]);
}

function readCacheFile(file: string, key: string): Record<string, unknown> {
  let parsed: Partial<CacheFile>;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<CacheFile>;
  } catch {
    // Missing, truncated or garbled: a cache starts over, it never fails a command.
    return {};
  }
  if (parsed?.format !== CACHE_FORMAT || parsed.key !== key) return {};
  const entries = parsed.lockfiles;
  return entries && typeof entries === 'object' && !Array.isArray(entries) ? entries : {};
}

/** Summaries of committed lockfiles by blob id, loaded from and saved to `.lockstep/`. */
export class LockfileCache {
  private readonly file: string;
  private readonly tmpDir: string;
  private readonly key: string;
  private entries: Record<string, unknown>;
  private readonly added = new Map<string, LockfileSummary>();
  readonly layout: RegistryLayout;

  private constructor(stateDir: string, layout: RegistryLayout) {
    this.file = path.join(stateDir, CACHE_FILE);
    this.tmpDir = path.join(stateDir, 'tmp');
    this.layout = layout;
    this.key = cacheKey(layout);
    this.entries = readCacheFile(this.file, this.key);
  }

  /** Loads the cache of the repository whose state directory is `stateDir` (`.lockstep/`). */
  static load(stateDir: string, layout: RegistryLayout = DEFAULT_LAYOUT): LockfileCache {
    return new LockfileCache(stateDir, layout);
  }

  /** The cached summary of `blob`; undefined when absent (or when the entry is not well-formed). */
  get(blob: string): LockfileSummary | undefined {
    const added = this.added.get(blob);
    if (added) return added;
    const raw = this.entries[blob];
    if (raw === undefined) return undefined;
    const parsed = summarySchema.safeParse(raw);
    return parsed.success ? (parsed.data as LockfileSummary) : undefined;
  }

  set(blob: string, summary: LockfileSummary): void {
    this.added.set(blob, summary);
  }

  /** Writes new entries, merged with whatever the file holds now. A no-op when nothing was added. */
  async save(): Promise<void> {
    if (this.added.size === 0) return;
    const merged: Record<string, unknown> = { ...readCacheFile(this.file, this.key) };
    for (const [blob, summary] of this.added) merged[blob] = summary;
    const body: CacheFile = { format: CACHE_FORMAT, key: this.key, lockfiles: merged };
    try {
      await writeFileAtomic(this.file, JSON.stringify(body), { sync: false, tmpDir: this.tmpDir });
    } catch {
      // A read-only checkout still answers; it only misses the speed-up next time.
      return;
    }
    this.entries = merged;
    this.added.clear();
  }
}

/** 64-hex tokens in a text: where the hashes a lockfile pins appear. */
function containsAny(text: string, hashes: ReadonlySet<string>): boolean {
  for (const m of text.matchAll(/[0-9a-f]{64}/g)) if (hashes.has(m[0])) return true;
  return false;
}

export interface SummarizeOptions {
  /**
   * Only lockfiles that mention one of these hashes need a summary: others are skipped unread
   * by the parser (a lockfile that pins model M has M's hash in its text). Default: all.
   */
  mentioning?: ReadonlySet<string>;
}

/** How many blobs are requested from git at once: bounds memory, keeps the pipe busy. */
const BATCH = 256;

/**
 * Summaries of the lockfile blobs `blobs`, from the cache or read through `reader` and parsed
 * (then cached). With `mentioning`, blobs that mention none of those hashes are left out.
 */
export async function summarizeBlobs(
  reader: GitReader,
  cache: LockfileCache,
  blobs: Iterable<string>,
  options: SummarizeOptions = {},
): Promise<Map<string, LockfileSummary>> {
  const out = new Map<string, LockfileSummary>();
  const missing: string[] = [];
  for (const blob of new Set(blobs)) {
    const hit = cache.get(blob);
    if (hit) out.set(blob, hit);
    else missing.push(blob);
  }
  for (let i = 0; i < missing.length; i += BATCH) {
    const batch = missing.slice(i, i + BATCH);
    const objects = await Promise.all(batch.map((b) => reader.read(b)));
    for (const obj of objects) {
      if (!obj || obj.type !== 'blob') continue;
      const text = obj.content.toString('utf8');
      if (options.mentioning && !containsAny(text, options.mentioning)) continue;
      let summary: LockfileSummary;
      try {
        summary = summarizeLockfile(
          parseLockfile(text, `${LOCKFILE_NAME}@${obj.oid.slice(0, 8)}`),
          cache.layout,
        );
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        summary = { metrics: {}, gate: 'unknown', invalid: err.message };
      }
      cache.set(obj.oid, summary);
      out.set(obj.oid, summary);
    }
  }
  return out;
}
