/**
 * Labels and speakers from file names and folders. Three dataset conventions plus folder names,
 * all mapped to the seven labels of `EMOTIONS`:
 *
 * - RAVDESS `03-01-05-01-02-01-12.wav`: 3rd field emotion (01 neutral, 02 calm, 03 happy, 04 sad,
 *   05 angry, 06 fearful, 07 disgust, 08 surprised), 7th field actor → speaker `A12`.
 *   `calm` is not one of the seven: dropped by default (`ingest.calm: drop`), or merged into neutral.
 * - TESS `OAF_back_angry.wav`: speaker `OAF`, `ps` (pleasant surprise) → surprise. The demo corpus
 *   (`S01_back_angry.wav`) uses this convention.
 * - CREMA-D `1001_DFA_ANG_XX.wav`: speaker `1001`, ANG DIS FEA HAP NEU SAD.
 * - Folders: the label is the folder name (`angry/`, `Anger/`, `OAF_angry/`, `YAF_pleasant_surprised/`),
 *   the speaker the file-name prefix before `_` or `-`, else the folder prefix, else the folder above.
 */
import path from 'node:path';

export type LabelConvention = 'auto' | 'folder' | 'ravdess' | 'tess' | 'cremad';

export interface LabelResult {
  /** One of the seven labels, or the raw unrecognized label text (validate reports it). */
  label: string;
  speaker: string;
  /** Which convention produced the label. */
  convention: Exclude<LabelConvention, 'auto'>;
  /** Set when the file must be skipped (RAVDESS calm with `calm: drop`). */
  skip?: string;
}

export interface LabelOptions {
  convention?: LabelConvention;
  /** What to do with RAVDESS calm (default `drop`). */
  calm?: 'drop' | 'neutral';
}

const RAVDESS_EMOTIONS: Record<string, string> = {
  '01': 'neutral',
  '02': 'calm',
  '03': 'happy',
  '04': 'sad',
  '05': 'angry',
  '06': 'fear',
  '07': 'disgust',
  '08': 'surprise',
};

const CREMAD_EMOTIONS: Record<string, string> = {
  ANG: 'angry',
  DIS: 'disgust',
  FEA: 'fear',
  HAP: 'happy',
  NEU: 'neutral',
  SAD: 'sad',
};

/** Spellings of each label seen in folder names and file names (lower case, `_`/`-`/space free). */
const SYNONYMS: Record<string, string> = {
  angry: 'angry',
  anger: 'angry',
  ang: 'angry',
  mad: 'angry',
  disgust: 'disgust',
  disgusted: 'disgust',
  dis: 'disgust',
  fear: 'fear',
  fearful: 'fear',
  fea: 'fear',
  afraid: 'fear',
  scared: 'fear',
  happy: 'happy',
  happiness: 'happy',
  hap: 'happy',
  joy: 'happy',
  neutral: 'neutral',
  neu: 'neutral',
  sad: 'sad',
  sadness: 'sad',
  surprise: 'surprise',
  surprised: 'surprise',
  sur: 'surprise',
  ps: 'surprise',
  pleasantsurprise: 'surprise',
  pleasantsurprised: 'surprise',
  calm: 'calm',
};

/** Maps a spelling (`Pleasant_surprised`, `ANG`, `fearful`) to a label, or undefined. */
export function normalizeLabel(text: string): string | undefined {
  return SYNONYMS[text.toLowerCase().replace(/[\s_-]+/g, '')];
}

const RAVDESS_RE = /^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$/;
const CREMAD_RE = /^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_([A-Z]{1,2})$/i;
const TESS_RE = /^([A-Za-z0-9]+)_([A-Za-z']+)_([A-Za-z_]+)$/;

function applyCalm(label: string, options: LabelOptions): { label: string; skip?: string } {
  if (label !== 'calm') return { label };
  if (options.calm === 'neutral') return { label: 'neutral' };
  return { label, skip: 'calm is not one of the seven labels (ingest.calm: drop)' };
}

function fromRavdess(stem: string, options: LabelOptions): LabelResult | undefined {
  const m = RAVDESS_RE.exec(stem);
  if (!m) return undefined;
  const raw = RAVDESS_EMOTIONS[m[3]] ?? `ravdess-${m[3]}`;
  return { ...applyCalm(raw, options), speaker: `A${m[7]}`, convention: 'ravdess' };
}

function fromCremad(stem: string): LabelResult | undefined {
  const m = CREMAD_RE.exec(stem);
  if (!m) return undefined;
  return { label: CREMAD_EMOTIONS[m[3].toUpperCase()], speaker: m[1], convention: 'cremad' };
}

function fromTess(stem: string): LabelResult | undefined {
  const m = TESS_RE.exec(stem);
  if (!m) return undefined;
  const label = normalizeLabel(m[3]);
  if (!label || label === 'calm') return undefined;
  // TESS ships a few files with the speaker written `OA` instead of `OAF`.
  const speaker = m[1].toUpperCase() === 'OA' ? 'OAF' : m[1];
  return { label, speaker, convention: 'tess' };
}

/** Folder convention: label from the closest folder whose name (or its last `_` part) is a label. */
function fromFolder(rel: string, options: LabelOptions): LabelResult {
  const parts = rel.split('/');
  const stem = path.posix.basename(rel).replace(/\.[^.]*$/, '');
  const folders = parts.slice(0, -1);
  for (let i = folders.length - 1; i >= 0; i--) {
    const name = folders[i];
    const segments = name.split(/[_-]/);
    // Try the whole name, then drop leading segments (`OAF_pleasant_surprised` → `pleasant_surprised`).
    for (let k = 0; k < segments.length; k++) {
      const label = normalizeLabel(segments.slice(k).join('_'));
      if (!label) continue;
      const prefix = segments.slice(0, k).join('_');
      const fileSpeaker = /^([A-Za-z0-9]+)[_-]/.exec(stem)?.[1];
      const speaker = fileSpeaker ?? (prefix || (i > 0 ? folders[i - 1] : 'unknown'));
      return { ...applyCalm(label, options), speaker, convention: 'folder' };
    }
  }
  const folder = folders.at(-1) ?? '';
  return {
    label: folder || '(none)',
    speaker: /^([A-Za-z0-9]+)[_-]/.exec(stem)?.[1] ?? 'unknown',
    convention: 'folder',
  };
}

/**
 * Label and speaker of one file, from its path relative to the data root (POSIX separators).
 * With `auto`, the file name conventions are tried first (RAVDESS, CREMA-D, TESS), then folders.
 * Never throws: an unrecognized label is returned as its raw text for validate to report.
 */
export function parseLabel(rel: string, options: LabelOptions = {}): LabelResult {
  const convention = options.convention ?? 'auto';
  const stem = path.posix.basename(rel).replace(/\.[^.]*$/, '');
  switch (convention) {
    case 'ravdess':
      return fromRavdess(stem, options) ?? unrecognized(rel, 'ravdess');
    case 'cremad':
      return fromCremad(stem) ?? unrecognized(rel, 'cremad');
    case 'tess':
      return fromTess(stem) ?? unrecognized(rel, 'tess');
    case 'folder':
      return fromFolder(rel, options);
    default:
      return fromRavdess(stem, options) ?? fromCremad(stem) ?? fromTess(stem) ?? fromFolder(rel, options);
  }
}

function unrecognized(rel: string, convention: Exclude<LabelConvention, 'auto'>): LabelResult {
  const stem = path.posix.basename(rel).replace(/\.[^.]*$/, '');
  return { label: `(unparsed ${convention} name)`, speaker: stem.split(/[_-]/)[0] || 'unknown', convention };
}
