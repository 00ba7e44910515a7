/**
 * Shared domain types. One home for the shapes that cross module boundaries: artifacts,
 * lockfile entries, stage declarations.
 */
import type { Output } from './output.ts';

/** A 64-hex-digit sha256, lower case. */
export type Oid = string;

/**
 * A file or directory pinned by content. For a file, `hash` is the sha256 of its bytes; for a
 * directory, `hash` is the sha256 of its manifest object and `dir` is true.
 */
export interface ArtifactRef {
  /** Repository-relative POSIX path. */
  path: string;
  hash: Oid;
  /** Total bytes (sum of files for a directory). */
  size: number;
  /** 1 for a file; number of files for a directory. */
  nfiles: number;
  dir?: boolean;
}

/** One entry of a directory manifest. Manifests list entries sorted by `path` (code-unit order). */
export interface ManifestEntry {
  path: string;
  sha256: Oid;
  size: number;
}

export interface Manifest {
  entries: ManifestEntry[];
}

/** What the lockfile records for one stage after a successful run. */
export interface LockEntry {
  /** Fingerprint of the stage's source files. */
  code: Oid;
  deps: ArtifactRef[];
  /** Dotted param key -> value read. */
  params: Record<string, unknown>;
  outs: ArtifactRef[];
  /** Flattened numeric metrics (`accuracy`, `f1.macro`, ...) read from the stage's metrics files. */
  metrics?: Record<string, number>;
  /** Declared inputs that are not files (a gate's baseline), by input name, as resolved for the run. */
  inputs?: Record<string, InputRef>;
}

/**
 * A resolved non-file input: what a stage reads from outside its deps (the model an environment's
 * branch pins, for a gate). `hash` is its identity (content, not where it came from); `label`
 * says where it was read (`dev@1a2b3c4d`, `none`) for plan reasons; `rev` is the commit it was
 * read at, so a replay (`verify`) can read the same value again.
 */
export interface InputRef {
  hash: Oid;
  label: string;
  rev?: string;
}

/** A declared non-file input of a stage: part of its plan reason and run-cache key. */
export interface StageInput {
  /** Name in the lock entry and in reasons (`baseline`). */
  name: string;
  /**
   * Resolves the input as it is now, or, given `pinned` (a value recorded by an earlier run),
   * the same value again (reading it at `pinned.rev`).
   */
  resolve(root: string, pinned?: InputRef): Promise<InputRef>;
}

/** `artifacts.lock.yaml` */
export interface Lockfile {
  schema: 1;
  /** Paths tracked with `lockstep add`, keyed by repository-relative path. */
  data: Record<string, Omit<ArtifactRef, 'path'>>;
  stages: Record<string, LockEntry>;
  /** Stages whose entry a merge dropped → the reason the next plan shows. */
  stale?: Record<string, string>;
}

/** What a stage's `run` receives. Stages never know whether they run in an Action, the CLI or a test. */
export interface StageContext {
  /** Absolute repository root. */
  root: string;
  /** The whole validated params object. */
  params: Record<string, any>;
  /** Progress and diagnostics. */
  out: Output;
  /** Absolute path of a repository-relative path. */
  abs(rel: string): string;
  signal: AbortSignal;
  /** The stage's declared inputs as resolved for this run (see `StageDef.inputs`). */
  inputs: Record<string, InputRef>;
}

/**
 * What a stage may return. `failed: true` means the stage ran to completion and its outputs are
 * valid (they are cached and locked), but a check it performs said no (a gate): the run exits 1.
 */
export interface StageResult {
  failed?: boolean;
  /** One line for the summary ("macro F1 0.81 >= 0.70; accuracy 0.82 >= 0.75"). */
  summary?: string;
  /**
   * Facts about this run that are not outputs (wall time, epochs timed, host): they go to the run
   * record (`.lockstep/records/<stage>.json`), never into an out, so output hashes stay pure.
   */
  facts?: Record<string, string | number | boolean>;
}

/** A pipeline stage declaration, like a dvc.yaml stage but in code. */
export interface StageDef {
  name: string;
  description: string;
  /** Repository-relative files or directories whose contents make the code fingerprint. */
  code: string[];
  /** Repository-relative paths read (files or directories, including other stages' outs). */
  deps: string[];
  /** Dotted params keys read (`train.epochs`). */
  params: string[];
  /** Repository-relative paths written (files or directories); cached and locked. */
  outs: string[];
  /** Repository-relative JSON files (also listed in outs) whose numbers are recorded as metrics. */
  metrics?: string[];
  /**
   * Top-level keys of the metrics files kept in the out only, never in the lockfile (evaluate's
   * `slices`: a thousand numbers that every lockfile read would otherwise parse). Readers get them
   * from the out by hash (lib/pipeline/recorded-slices.ts).
   */
  outOnlyMetrics?: string[];
  /** Inputs that are not files (a gate's baseline): resolved at plan time, locked, part of the key. */
  inputs?: StageInput[];
  run(ctx: StageContext): Promise<StageResult | void>;
  /**
   * A stage whose work splits across machines (featurize on N replicas, or a job matrix):
   * `run` computes shard `i` of `N` into a scratch directory, `merge` turns all N directories
   * into the stage's outs, byte-identical to what `run(ctx)` alone writes.
   */
  shards?: {
    run(ctx: StageContext, shard: Shard, dir: string): Promise<void>;
    merge(ctx: StageContext, dirs: string[]): Promise<StageResult | void>;
  };
}

/** Shard `index` (0-based) of `count`. */
export interface Shard {
  index: number;
  count: number;
}
