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
import { parse } from 'csv-parse/sync';
import { ConfigError, formatProblem } from '../../lib/errors.ts';
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

/** The columns each demographics file must have: the speaker's id, then its gender. */
const COLUMNS: Record<(typeof DEMOGRAPHICS_FILES)[number], [string, string]> = {
  'VideoDemographics.csv': ['actorid', 'sex'],
  'speakers.csv': ['speaker', 'gender'],
};

/**
 * Rows of a CSV file with a header line, keyed by the lower-cased header. Spreadsheet exports are
 * read as written: a byte-order mark, CRLF line ends, quoted fields, blank lines.
 */
function readCsv(file: string, shown: string): { header: string[]; rows: Record<string, string>[] } {
  let header: string[] = [];
  try {
    const rows = parse(fs.readFileSync(file), {
      bom: true,
      columns: (names: string[]) => (header = names.map((h) => String(h).trim().toLowerCase())),
      skip_empty_lines: true,
      trim: true,
      relax_column_count: true,
    }) as Record<string, string>[];
    return { header, rows };
  } catch (err) {
    throw new ConfigError(
      formatProblem(
        shown,
        'is not a readable CSV file',
        undefined,
        `Fix it (${(err as Error).message.split('\n')[0]}).`,
      ),
    );
  }
}

/**
 * Speaker → gender from the demographics files in `rootAbs` (CREMA-D's `VideoDemographics.csv`,
 * a generic `speakers.csv`; named `<rootName>/<file>` in errors). Missing files give an empty
 * map; rows without a known gender are left out. A file without its two columns, or giving one
 * speaker two genders, is refused: it would silently drop or mislabel every gender slice.
 */
export function readDemographics(rootAbs: string, rootName = ''): Map<string, Gender> {
  const out = new Map<string, Gender>();
  for (const name of DEMOGRAPHICS_FILES) {
    const file = path.join(rootAbs, name);
    if (!fs.existsSync(file)) continue;
    const shown = rootName ? path.posix.join(rootName, name) : name;
    const [idColumn, genderColumn] = COLUMNS[name];
    const { header, rows } = readCsv(file, shown);
    for (const column of [idColumn, genderColumn]) {
      if (!header.includes(column))
        throw new ConfigError(
          formatProblem(
            shown,
            `no "${column}" column in the header`,
            header.join(','),
            `Name its columns ${COLUMNS[name].join(',')} (one row per speaker).`,
          ),
        );
    }
    const seen = new Map<string, Gender>();
    for (const row of rows) {
      const speaker = row[idColumn];
      const gender = normalizeGender(row[genderColumn]);
      if (!speaker || !gender) continue;
      const before = seen.get(speaker);
      if (before && before !== gender)
        throw new ConfigError(
          formatProblem(
            shown,
            `speaker listed as ${before} and as ${gender}`,
            speaker,
            'Keep one row per speaker.',
          ),
        );
      seen.set(speaker, gender);
      out.set(speaker, gender);
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
