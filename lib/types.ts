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
}

/**
 * What a stage may return. `failed: true` means the stage ran to completion and its outputs are
 * valid (they are cached and locked), but a check it performs said no (a gate): the run exits 1.
 */
export interface StageResult {
  failed?: boolean;
  /** One line for the summary ("macro F1 0.81 >= 0.70; accuracy 0.82 >= 0.75"). */
  summary?: string;
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
  run(ctx: StageContext): Promise<StageResult | void>;
}
