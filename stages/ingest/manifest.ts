/**
 * The ingest manifest (`out/ingest/manifest.json`): every audio file with its hash, label,
 * speaker, basic format facts and split. Unreadable files are listed too (zeros and `error`) so
 * that validate can report them.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeWav } from '../../lib/audio/wav.ts';
import { ConfigError, formatProblem } from '../../lib/errors.ts';
import { EMOTIONS } from '../../lib/params-schema.ts';
import { parseLabel, type LabelOptions } from './labels.ts';
import { conventionGender, readDemographics, sampleFormat, type Gender } from './demographics.ts';
import { splitSpeakers, type SplitName, type SplitOptions, type Splits } from './split.ts';

export interface ManifestFile {
  /** Repository-relative (or absolute, for data outside the repository) POSIX path. */
  path: string;
  sha256: string;
  label: string;
  speaker: string;
  duration: number;
  sampleRate: number;
  channels: number;
  /** Sample format and channel layout (`pcm16 mono`, `float32 stereo`); empty when unreadable. */
  format: string;
  /** Which corpus convention labelled the file (`ravdess`, `cremad`, `tess`, `folder`, `demo`). */
  corpus: string;
  /** The speaker's gender, when a demographics file or the dataset convention gives it. */
  gender?: Gender;
  split: SplitName;
  /** Why the file could not be decoded. */
  error?: string;
}

export interface IngestManifest {
  version: 1;
  root: string;
  /** Sorted known labels present in the data. */
  labels: string[];
  files: ManifestFile[];
  splits: Splits;
  /** Files left out on purpose (RAVDESS calm with `ingest.calm: drop`), with the reason. */
  skipped: { path: string; reason: string }[];
}

/**
 * Relative POSIX paths of every `.wav` file under `dir`, sorted (code-unit order). Hidden entries
 * are ignored: archives unpacked on macOS carry `._name.wav` resource forks that are not audio.
 */
export async function listWavFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(child);
      else if (e.isFile() && /\.wav$/i.test(e.name)) out.push(child);
    }
  };
  await walk('');
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface BuildOptions extends LabelOptions, SplitOptions {
  /** How `root` is written in the manifest (repository-relative). */
  rootName: string;
  /** The corpus name recorded for every file (the demo corpus), instead of the label convention. */
  corpus?: string;
}

/**
 * Scans `rootAbs` and builds the manifest. Never throws for a bad audio file (it is listed with
 * `error`); throws a ConfigError when the folder is missing or holds no `.wav` file.
 */
export async function buildManifest(rootAbs: string, options: BuildOptions): Promise<IngestManifest> {
  let rels: string[];
  try {
    rels = await listWavFiles(rootAbs);
  } catch (err) {
    throw new ConfigError(
      formatProblem(
        'params.yaml: data.path',
        'cannot read the data folder',
        options.rootName,
        `Create it or point data.path at your audio (${(err as Error).message.split('\n')[0]}).`,
      ),
    );
  }
  if (rels.length === 0) {
    throw new ConfigError(
      formatProblem(
        'params.yaml: data.path',
        'no .wav files under',
        options.rootName,
        'Put audio there (e.g. <emotion>/<file>.wav) or set data.source: demo.',
      ),
    );
  }
  const known = new Set<string>(EMOTIONS);
  const demographics = readDemographics(rootAbs, options.rootName);
  const files: Omit<ManifestFile, 'split'>[] = [];
  const skipped: IngestManifest['skipped'] = [];
  for (const rel of rels) {
    const p = path.posix.join(options.rootName, rel);
    const parsed = parseLabel(rel, options);
    if (parsed.skip) {
      skipped.push({ path: p, reason: parsed.skip });
      continue;
    }
    const bytes = await readFile(path.join(rootAbs, ...rel.split('/')));
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const entry: Omit<ManifestFile, 'split'> = {
      path: p,
      sha256,
      label: parsed.label,
      speaker: parsed.speaker,
      duration: 0,
      sampleRate: 0,
      channels: 0,
      format: '',
      corpus: options.corpus ?? parsed.convention,
    };
    const gender = demographics.get(parsed.speaker) ?? conventionGender(parsed);
    if (gender) entry.gender = gender;
    try {
      const audio = decodeWav(bytes, p);
      entry.duration = audio.sampleRate ? audio.length / audio.sampleRate : 0;
      entry.sampleRate = audio.sampleRate;
      entry.channels = audio.channels.length;
      entry.format = sampleFormat(audio.bitDepth, audio.channels.length);
    } catch (err) {
      entry.error = (err as Error).message.split('\n')[0];
    }
    files.push(entry);
  }
  const splits = splitSpeakers(
    files.map((f) => f.speaker),
    options,
  );
  const splitOf = new Map<string, SplitName>();
  for (const name of ['train', 'validation', 'test'] as const)
    for (const s of splits[name]) splitOf.set(s, name);
  return {
    version: 1,
    root: options.rootName,
    labels: [...new Set(files.map((f) => f.label).filter((l) => known.has(l)))].sort(),
    files: files.map((f) => ({ ...f, split: splitOf.get(f.speaker) ?? 'train' })),
    splits,
    skipped,
  };
}
