/**
 * Evaluate's metrics as a revision recorded them: the headline metrics and intervals from the
 * lockfile, the per-slice figures from `out/eval/metrics.json` inside the evaluate out, read by
 * hash from the local cache (or a remote). The lockfile leaves the slices out (the stage's
 * `outOnlyMetrics`) so that every command reading lockfiles parses a few dozen numbers, not a
 * thousand. A lockfile written before that carries them flattened
 * (`slices.speaker.S03.metrics.accuracy`); they are then read from the lockfile as they are.
 */
import { IntegrityError, LockstepError, formatProblem } from '../errors.ts';
import { PATHS } from '../paths.ts';
import type { Repo } from '../repo.ts';
import type { EvalMetrics } from '../slices/shape.ts';
import type { Remote } from '../store/remote.ts';
import type { ArtifactRef, Lockfile } from '../types.ts';

/** The stage and the file the slices come from. */
const STAGE = 'evaluate';
const FILE = 'metrics.json';

export interface RecordedEvalMetrics extends EvalMetrics {
  /**
   * Set when the lockfile points at slices that could not be read (the out is in neither the
   * cache nor the remote): the one-line reason. `slices` is then empty.
   */
  missing?: string;
}

export interface RecordedOptions {
  /** Where objects missing from the cache come from (default: the local cache only). */
  remote?: Remote;
  /** How errors name the revision (`HEAD`, `dev@1a2b3c4d`); default `the lockfile`. */
  label?: string;
}

/**
 * The verified bytes of object `oid`, from the local cache or, through it, from `remote` (which
 * downloads, verifies and heals).
 * @throws IntegrityError (a LockstepError) naming `where` when neither has it.
 */
async function readObject(
  repo: Repo,
  oid: string,
  where: string,
  remote: Remote | undefined,
  manifest?: string,
): Promise<Buffer> {
  const { Cache } = await import('../store/cache.ts');
  try {
    return await new Cache(repo, { remote }).readBytes(oid, {
      path: where,
      ...(manifest ? { manifest } : {}),
    });
  } catch (err) {
    // A remote without the object may answer with its own error (a local directory: ENOENT):
    // said as what it means, with the fix, rather than as the file system's words.
    if (err instanceof LockstepError || !remote) throw err;
    const held = await (
      manifest
        ? import('../store/packs.ts').then(async ({ remoteHolds }) =>
            remoteHolds(new Cache(repo), remote, [manifest, oid], { manifests: [manifest] }),
          )
        : remote.has([oid])
    ).catch(() => undefined);
    if (held && !held.has(oid)) {
      throw new IntegrityError(
        formatProblem(
          where,
          `object is in neither the cache nor the remote ${remote.url}`,
          oid,
          'Push it from the machine that ran the pipeline (lockstep push), or configure the remote that has it.',
        ),
      );
    }
    throw err;
  }
}

/** True when flat metrics carry slice keys (a lockfile from before slices left it). */
export function hasFlatSlices(metrics: Record<string, number> | undefined): boolean {
  for (const k in metrics ?? {}) if (k.startsWith('slices.')) return true;
  return false;
}

/**
 * The object id of evaluate's `metrics.json` inside the evaluate out `lockfile` pins, when the
 * lockfile's metrics do not carry the slices themselves; undefined otherwise. Reads only the
 * lockfile: a plan can name the slices' content without reading the store.
 */
export function slicesSource(lockfile: Lockfile): { out: string; file: string } | undefined {
  const entry = lockfile.stages[STAGE];
  if (!entry || hasFlatSlices(entry.metrics)) return undefined;
  const out = metricsOut(entry.outs);
  return out ? { out: out.hash, file: `${PATHS.eval}/${FILE}` } : undefined;
}

/** The out holding evaluate's metrics file: the `out/eval` directory, or the file itself. */
function metricsOut(outs: ArtifactRef[]): ArtifactRef | undefined {
  return outs.find((o) => (o.path === PATHS.eval && o.dir) || o.path === `${PATHS.eval}/${FILE}`);
}

/** A reason the slices could not be read: `missing`, one line naming the file and the fix. */
class SlicesUnreadable extends Error {}

/**
 * Evaluate's metrics recorded by `lockfile` (see the module comment). A lockfile without an
 * evaluate entry gives empty metrics. Slices that cannot be read give `missing`, never a throw,
 * so a listing still shows the headline metrics and a gate refuses with the reason: an out in
 * neither the cache nor the remote, a corrupt object, an out with no metrics.json file in it,
 * a metrics.json that is not JSON, has no `slices` or whose slices do not fit
 * lib/slices/shape.ts.
 */
export async function recordedEvalMetrics(
  repo: Repo,
  lockfile: Lockfile,
  options: RecordedOptions = {},
): Promise<RecordedEvalMetrics> {
  // Loaded here, not at the top: the gate's declaration imports slicesSource at plan time.
  const { evalMetricsSchema, readEvalMetrics } = await import('../slices/shape.ts');
  const entry = lockfile.stages[STAGE];
  const recorded: RecordedEvalMetrics = readEvalMetrics(entry?.metrics ?? {});
  const out = entry && metricsOut(entry.outs);
  if (!entry || !out || hasFlatSlices(entry.metrics)) return recorded;
  const rel = `${PATHS.eval}/${FILE}`;
  const where = `${rel}@${options.label ?? 'the lockfile'}`;
  const rerun = 'Re-run evaluate (lockstep repro evaluate --force) and commit the lockfile.';
  try {
    const text = (await readMetricsText(repo, out, where, rerun, options.remote)).toString('utf8');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new SlicesUnreadable(`${where}: not valid JSON (${(err as Error).message}). ${rerun}`);
    }
    const slices =
      doc !== null && typeof doc === 'object' && !Array.isArray(doc)
        ? (doc as { slices?: unknown }).slices
        : undefined;
    // Evaluate always writes `slices`: without it there is nothing a slice rule could judge.
    if (slices === undefined) throw new SlicesUnreadable(`${where}: has no "slices" key. ${rerun}`);
    const { parseValue } = await import('../yaml-source.ts');
    recorded.slices =
      parseValue(evalMetricsSchema.shape.slices, slices, where, {
        at: ['slices'],
        suffix:
          ', or re-run evaluate (lockstep repro evaluate); the shape is in lib/slices/eval-metrics.schema.json',
      }) ?? {};
  } catch (err) {
    const errno = typeof (err as NodeJS.ErrnoException).code === 'string';
    if (!(err instanceof LockstepError || err instanceof SlicesUnreadable || errno)) throw err;
    const line = (err as Error).message.split('\n')[0]!;
    recorded.missing = errno
      ? `${where}: cannot be read (${line}). Run lockstep pull, or ${rerun[0]!.toLowerCase()}${rerun.slice(1)}`
      : line;
    recorded.slices = {};
  }
  return recorded;
}

/** The bytes of metrics.json in evaluate out `out` (the out/eval directory, or the file itself). */
async function readMetricsText(
  repo: Repo,
  out: ArtifactRef,
  where: string,
  rerun: string,
  remote: Remote | undefined,
): Promise<Buffer> {
  if (!out.dir) return readObject(repo, out.hash, where, remote);
  // A directory out at the file's own path holds no metrics.json file to read.
  if (out.path !== PATHS.eval) throw new SlicesUnreadable(`${where}: is a directory in the out. ${rerun}`);
  const { decodeManifest } = await import('../store/manifest.ts');
  const manifest = decodeManifest(
    await readObject(repo, out.hash, where.replace(`${PATHS.eval}/${FILE}@`, `${out.path}@`), remote),
    out.hash,
    out.path,
  );
  const file = manifest.entries.find((e) => e.path === FILE);
  if (!file) {
    const under = manifest.entries.some((e) => e.path.startsWith(`${FILE}/`));
    throw new SlicesUnreadable(
      `${where}: ${under ? 'is a directory' : 'is not'} in the evaluate out. ${rerun}`,
    );
  }
  return readObject(repo, file.sha256, where, remote, out.hash);
}
