/**
 * What the registry reads from a committed lockfile (the model it pins, the headline metrics,
 * the gate verdict), kept in `.lockstep/lockfile-cache.json` keyed by git blob id. A blob id is
 * the hash of the file's bytes, so an entry can never go stale: a rewritten branch points at
 * other blobs, and those are read afresh. Writes are whole-file and atomic (temp + rename) after
 * merging what other processes wrote meanwhile, so concurrent commands at worst redo some work.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.ts';
import type { GitReader } from '../git-reader.ts';
import { LOCKFILE_NAME, LOCKFILE_SCHEMA, parseLockfileQuick } from '../lockfile.ts';
import { writeFileAtomic } from '../atomic.ts';
import type { ArtifactRef, Lockfile } from '../types.ts';
import { PATHS } from '../paths.ts';
import { modelOf } from '../environment/model.ts';

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
  modelPath: PATHS.model,
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
  const model = modelOf(lockfile, layout.modelPath);
  return { ...(model ? { model } : {}), ...metricsOf(lockfile, layout) };
}

/** Bump when what a summary holds, or how it is computed, changes: older files are then ignored. */
const CACHE_FORMAT = 1;
const CACHE_FILE = 'lockfile-cache.json';

const OID = /^[0-9a-f]{64}$/;

function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/**
 * Whether a cache entry has the shape of a summary. A plain check rather than a zod schema: a
 * listing looks up ten thousand entries, and this costs microseconds each where zod costs tens.
 */
function isSummary(v: unknown): v is LockfileSummary {
  if (!v || typeof v !== 'object') return false;
  const s = v as Record<string, unknown>;
  if (s.gate !== 'passed' && s.gate !== 'failed' && s.gate !== 'unknown') return false;
  if (s.invalid !== undefined && typeof s.invalid !== 'string') return false;
  if (!s.metrics || typeof s.metrics !== 'object' || Array.isArray(s.metrics)) return false;
  for (const m of Object.values(s.metrics)) if (typeof m !== 'number') return false;
  if (s.model === undefined) return true;
  const m = s.model as Record<string, unknown>;
  return (
    !!m &&
    typeof m === 'object' &&
    typeof m.path === 'string' &&
    typeof m.hash === 'string' &&
    OID.test(m.hash) &&
    isCount(m.size) &&
    isCount(m.nfiles) &&
    (m.dir === undefined || typeof m.dir === 'boolean')
  );
}

interface CacheFile {
  format: number;
  /** The lockfile schema and layout the summaries were computed under. */
  key: string;
  /** Blob id → summary. */
  lockfiles: Record<string, unknown>;
  /** Commit id → [blob id, next older commit or ""]: see {@link ChainLink}. */
  chains: Record<string, unknown>;
}

/**
 * One step of a branch's first-parent lockfile history: `commit` set the lockfile to `blob`
 * (`""`: deleted it), and `next` is the next older commit on its first-parent line that changed
 * the lockfile (`""`: none). Both follow from the commit id alone, so a link never goes stale.
 */
export interface ChainLink {
  blob: string;
  next: string;
}

export interface LoadOptions {
  /**
   * Read and keep first-parent links (default true). False in a shallow clone: there the walk
   * ends at the shallow boundary, so "no older change" is not a fact about the commit and would
   * go stale on `git fetch --unshallow`. Blob summaries are kept either way.
   */
  links?: boolean;
  /**
   * Read and write `.lockstep/lockfile-cache.json` (default true). False for commands that read
   * a handful of lockfiles: parsing those costs less than loading a cache that grows with the
   * history, so their cost stays independent of it. Entries then live for the one command.
   */
  persist?: boolean;
}

type Tables = Pick<CacheFile, 'lockfiles' | 'chains'>;

function cacheKey(layout: RegistryLayout): string {
  return JSON.stringify([LOCKFILE_SCHEMA, layout.modelPath, layout.metricsStage, layout.gateStage]);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function readCacheFile(file: string, key: string): Tables {
  let parsed: Partial<CacheFile>;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<CacheFile>;
  } catch {
    // Missing, truncated or garbled: a cache starts over, it never fails a command.
    return { lockfiles: {}, chains: {} };
  }
  if (!isRecord(parsed) || parsed.format !== CACHE_FORMAT || parsed.key !== key)
    return { lockfiles: {}, chains: {} };
  return {
    lockfiles: isRecord(parsed.lockfiles) ? parsed.lockfiles : {},
    chains: isRecord(parsed.chains) ? parsed.chains : {},
  };
}

/** An object id (40 or 64 lowercase hex digits, or "" for none), as a link holds it. */
function isLinkId(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  if (v.length === 0) return true;
  if (v.length < 40 || v.length > 64) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** Summaries of committed lockfiles by blob id, loaded from and saved to `.lockstep/`. */
export class LockfileCache {
  private readonly file: string;
  private readonly tmpDir: string;
  private readonly key: string;
  private tables: Tables;
  private readonly added = new Map<string, LockfileSummary>();
  private readonly addedLinks = new Map<string, ChainLink>();
  readonly layout: RegistryLayout;
  /** Whether first-parent links are read and kept (see {@link LoadOptions.links}). */
  private readonly links: boolean;
  private readonly persist: boolean;

  private constructor(stateDir: string, layout: RegistryLayout, options: LoadOptions) {
    this.file = path.join(stateDir, CACHE_FILE);
    this.tmpDir = path.join(stateDir, 'tmp');
    this.layout = layout;
    this.persist = options.persist ?? true;
    this.links = (options.links ?? true) && this.persist;
    this.key = cacheKey(layout);
    this.tables = this.persist ? readCacheFile(this.file, this.key) : { lockfiles: {}, chains: {} };
  }

  /** Loads the cache of the repository whose state directory is `stateDir` (`.lockstep/`). */
  static load(
    stateDir: string,
    layout: RegistryLayout = DEFAULT_LAYOUT,
    options: LoadOptions = {},
  ): LockfileCache {
    return new LockfileCache(stateDir, layout, options);
  }

  /** The cached summary of `blob`; undefined when absent (or when the entry is not well-formed). */
  get(blob: string): LockfileSummary | undefined {
    const added = this.added.get(blob);
    if (added) return added;
    const raw = Object.hasOwn(this.tables.lockfiles, blob) ? this.tables.lockfiles[blob] : undefined;
    return isSummary(raw) ? raw : undefined;
  }

  set(blob: string, summary: LockfileSummary): void {
    this.added.set(blob, summary);
  }

  /** The cached first-parent link of `commit`, if known. */
  link(commit: string): ChainLink | undefined {
    if (!this.links) return undefined;
    const added = this.addedLinks.get(commit);
    if (added) return added;
    const raw = Object.hasOwn(this.tables.chains, commit) ? this.tables.chains[commit] : undefined;
    if (!Array.isArray(raw) || raw.length !== 2) return undefined;
    const [blob, next] = raw as unknown[];
    // Walking a branch follows one link per commit (ten thousand on a long dev branch), so the
    // shape is checked by length and characters without a regular expression per field.
    if (!isLinkId(blob) || !isLinkId(next)) return undefined;
    return { blob, next };
  }

  setLink(commit: string, link: ChainLink): void {
    if (!this.links) return;
    this.addedLinks.set(commit, link);
  }

  /** Writes new entries, merged with whatever the file holds now. A no-op when nothing was added, or without `persist`. */
  async save(): Promise<void> {
    if (!this.persist || (this.added.size === 0 && this.addedLinks.size === 0)) return;
    const now = readCacheFile(this.file, this.key);
    const lockfiles: Record<string, unknown> = { ...now.lockfiles };
    for (const [blob, summary] of this.added) lockfiles[blob] = summary;
    const chains: Record<string, unknown> = { ...now.chains };
    for (const [commit, link] of this.addedLinks) chains[commit] = [link.blob, link.next];
    const body: CacheFile = { format: CACHE_FORMAT, key: this.key, lockfiles, chains };
    try {
      await writeFileAtomic(this.file, JSON.stringify(body), { sync: false, tmpDir: this.tmpDir });
    } catch {
      // A read-only checkout still answers; it only misses the speed-up next time.
      return;
    }
    this.tables = { lockfiles, chains };
    this.added.clear();
    this.addedLinks.clear();
  }
}

/** The summary of one committed lockfile's text (parsed by `parseLockfileQuick`). */
function summarizeText(text: string, file: string, layout: RegistryLayout): LockfileSummary {
  return summarizeLockfile(parseLockfileQuick(text, file), layout);
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
        summary = summarizeText(text, `${LOCKFILE_NAME}@${obj.oid.slice(0, 8)}`, cache.layout);
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
