/**
 * What the dataset conventions say about a speaker, for evaluate's slices:
 *
 * - RAVDESS actors `A01`..`A24`: odd numbers are male, even numbers female (the corpus' README).
 * - TESS speakers `OAF` and `YAF` (older and younger adult female): female.
 * - CREMA-D: `VideoDemographics.csv` (ActorID, Age, Sex, Race, Ethnicity) in the data folder,
 *   when present.
 * - Any corpus: a `speakers.csv` in the data folder with `speaker` and `gender` columns (the demo
 *   corpus writes one).
 *
 * A file-given gender wins over a convention; a speaker nothing speaks for has no gender.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LabelResult } from './labels.ts';

export type Gender = 'female' | 'male';

/** Demographics files read from the data folder, in the order they are applied. */
export const DEMOGRAPHICS_FILES = ['VideoDemographics.csv', 'speakers.csv'] as const;

function normalizeGender(text: string | undefined): Gender | undefined {
  const t = (text ?? '').trim().toLowerCase();
  if (t === 'female' || t === 'f' || t === 'woman') return 'female';
  if (t === 'male' || t === 'm' || t === 'man') return 'male';
  return undefined;
}

/** Rows of a plain comma-separated file with a header line (no quoted fields, as both files are). */
function readCsv(file: string): Record<string, string>[] {
  const lines = fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '');
  const header = (lines.shift() ?? '').split(',').map((h) => h.trim().toLowerCase());
  return lines.map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(header.map((h, i) => [h, (cells[i] ?? '').trim()]));
  });
}

/**
 * Speaker → gender from the demographics files in `rootAbs` (CREMA-D's `VideoDemographics.csv`,
 * a generic `speakers.csv`). Missing files give an empty map; rows without a known gender are
 * left out.
 */
export function readDemographics(rootAbs: string): Map<string, Gender> {
  const out = new Map<string, Gender>();
  for (const name of DEMOGRAPHICS_FILES) {
    const file = path.join(rootAbs, name);
    if (!fs.existsSync(file)) continue;
    for (const row of readCsv(file)) {
      const speaker = row.actorid ?? row.speaker;
      const gender = normalizeGender(row.sex ?? row.gender);
      if (speaker && gender) out.set(speaker, gender);
    }
  }
  return out;
}

/** The gender a dataset convention gives a speaker (RAVDESS actor parity, TESS speakers). */
export function conventionGender(parsed: Pick<LabelResult, 'convention' | 'speaker'>): Gender | undefined {
  if (parsed.convention === 'ravdess') {
    const actor = Number(parsed.speaker.replace(/^A/, ''));
    return Number.isInteger(actor) && actor > 0 ? (actor % 2 === 1 ? 'male' : 'female') : undefined;
  }
  if (parsed.convention === 'tess' && /^(OAF|YAF)$/i.test(parsed.speaker)) return 'female';
  return undefined;
}

/** The sample format of a decoded file's bit depth (`16` → `pcm16`, `32f` → `float32`) and channels. */
export function sampleFormat(bitDepth: string, channels: number): string {
  const enc = bitDepth === '32f' ? 'float32' : bitDepth === '64' ? 'float64' : `pcm${bitDepth}`;
  return `${enc} ${channels === 1 ? 'mono' : channels === 2 ? 'stereo' : `${channels}ch`}`;
}
