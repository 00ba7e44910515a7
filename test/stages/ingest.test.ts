import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.ts';
import { memoryOutput } from '../../lib/output.ts';
import type { StageContext } from '../../lib/types.ts';
import { ingestStage } from '../../stages/ingest/index.ts';
import { parseLabel, type LabelConvention } from '../../stages/ingest/labels.ts';
import type { IngestManifest } from '../../stages/ingest/manifest.ts';
import { splitSpeakers } from '../../stages/ingest/split.ts';
import { paramsSchema } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { writeBadAudio } from '../support/bad-audio.ts';
import { makeTinyCorpus } from '../support/corpus.ts';

describe('ingest labels', () => {
  const cases: [string, LabelConvention, string, string][] = [
    // RAVDESS: 3rd field emotion, 7th actor.
    ['Actor_12/03-01-05-01-02-01-12.wav', 'auto', 'angry', 'A12'],
    ['Actor_01/03-01-01-01-01-01-01.wav', 'ravdess', 'neutral', 'A01'],
    ['03-01-03-02-01-02-07.wav', 'auto', 'happy', 'A07'],
    ['03-01-04-01-01-01-02.wav', 'auto', 'sad', 'A02'],
    ['03-01-06-01-01-01-03.wav', 'auto', 'fear', 'A03'],
    ['03-01-07-01-01-01-04.wav', 'auto', 'disgust', 'A04'],
    ['03-01-08-01-01-01-05.wav', 'auto', 'surprise', 'A05'],
    // TESS: speaker_word_emotion; ps = pleasant surprise.
    ['OAF_angry/OAF_back_angry.wav', 'auto', 'angry', 'OAF'],
    ['YAF_pleasant_surprised/YAF_dog_ps.wav', 'tess', 'surprise', 'YAF'],
    ['OAF_Fear/OAF_bite_fear.wav', 'auto', 'fear', 'OAF'],
    ['OAF_neutral/OA_bite_neutral.wav', 'auto', 'neutral', 'OAF'],
    ['S03_sad/S03_back_sad.wav', 'auto', 'sad', 'S03'],
    // CREMA-D: speaker_sentence_emotion_level.
    ['1001_DFA_ANG_XX.wav', 'auto', 'angry', '1001'],
    ['AudioWAV/1091_WSI_DIS_HI.wav', 'cremad', 'disgust', '1091'],
    ['1002_IEO_FEA_LO.wav', 'auto', 'fear', '1002'],
    ['1003_TIE_HAP_MD.wav', 'auto', 'happy', '1003'],
    ['1004_ITS_NEU_XX.wav', 'auto', 'neutral', '1004'],
    ['1005_IWL_SAD_XX.wav', 'auto', 'sad', '1005'],
    // Folders: label from the folder name (synonyms), speaker from the file-name prefix or folder.
    ['angry/spk7-take1.wav', 'auto', 'angry', 'spk7'],
    ['Happiness/clip.wav', 'folder', 'happy', 'unknown'],
    ['alice/sadness/001.wav', 'folder', 'sad', 'alice'],
    ['bob_fearful/x.wav', 'folder', 'fear', 'bob'],
    ['surprised/carol_2.wav', 'auto', 'surprise', 'carol'],
    // Unknown labels come back raw, for validate to report.
    ['bored/dave_1.wav', 'auto', 'bored', 'dave'],
    ['loose.wav', 'auto', '(none)', 'unknown'],
  ];
  it.each(cases)('ingest labels %s (%s) -> %s / %s', (rel, convention, label, speaker) => {
    const r = parseLabel(rel, { convention });
    expect(r.label).toBe(label);
    expect(r.speaker).toBe(speaker);
    expect(r.skip).toBeUndefined();
  });

  it('ingest labels drop RAVDESS calm by default and merge it into neutral when asked', () => {
    expect(parseLabel('03-01-02-01-01-01-09.wav').skip).toMatch(/calm/);
    expect(parseLabel('03-01-02-01-01-01-09.wav', { calm: 'neutral' })).toMatchObject({
      label: 'neutral',
      speaker: 'A09',
    });
  });

  it('ingest labels report a name that does not follow the forced convention', () => {
    expect(parseLabel('angry/x.wav', { convention: 'ravdess' }).label).toMatch(/unparsed ravdess/);
    expect(parseLabel('OAF_back_angry.wav', { convention: 'cremad' }).label).toMatch(/unparsed cremad/);
  });
});

describe('ingest split', () => {
  const speakers = (n: number): string[] =>
    Array.from({ length: n }, (_, i) => `S${String(i + 1).padStart(2, '0')}`);

  it('ingest split puts each speaker in exactly one non-empty split for 3 to 40 speakers', () => {
    for (let n = 3; n <= 40; n++) {
      const s = splitSpeakers(speakers(n), { train: 0.6, validation: 0.2, seed: 13 });
      const all = [...s.train, ...s.validation, ...s.test];
      expect(all.sort()).toEqual(speakers(n));
      expect(new Set(all).size).toBe(n);
      expect(s.train.length).toBeGreaterThan(0);
      expect(s.validation.length).toBeGreaterThan(0);
      expect(s.test.length).toBeGreaterThan(0);
      expect(s.train.length).toBeGreaterThanOrEqual(s.test.length);
    }
  });

  it('ingest split is deterministic, order-independent, seeded and stable when a speaker is added', () => {
    const base = splitSpeakers(speakers(20), { seed: 13 });
    expect(splitSpeakers([...speakers(20)].reverse(), { seed: 13 })).toEqual(base);
    expect(splitSpeakers(speakers(20), { seed: 14 })).not.toEqual(base);
    const grown = splitSpeakers(speakers(21), { seed: 13 });
    const where = (s: ReturnType<typeof splitSpeakers>, id: string): string =>
      (['train', 'validation', 'test'] as const).find((k) => s[k].includes(id))!;
    const moved = speakers(20).filter((id) => where(base, id) !== where(grown, id));
    expect(moved.length).toBeLessThanOrEqual(2);
  });

  it('ingest split handles one and two speakers', () => {
    expect(splitSpeakers(['a'])).toEqual({ train: ['a'], validation: [], test: [] });
    const two = splitSpeakers(['a', 'b']);
    expect(two.train).toHaveLength(1);
    expect(two.test).toHaveLength(1);
  });
});

describe('ingest stage', () => {
  let root: string;
  const params = paramsSchema.parse({});
  const ctx = (p = params): StageContext => ({
    root,
    params: p as unknown as Record<string, unknown>,
    out: memoryOutput(),
    abs: (rel) => path.join(root, rel),
    signal: new AbortController().signal,
    inputs: {},
  });
  const readManifest = (): IngestManifest =>
    JSON.parse(fs.readFileSync(path.join(root, PATHS.manifest), 'utf8'));

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ingest-'));
    await makeTinyCorpus(path.join(root, PATHS.demo), { speakers: 4, words: 1 });
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('ingest stage writes a sorted manifest with labels, speakers, durations and a leak-free split', async () => {
    const result = await ingestStage(params).run(ctx());
    expect(result && result.summary).toMatch(/28 files, 7 labels/);
    const first = fs.readFileSync(path.join(root, PATHS.manifest));
    const m = readManifest();
    expect(m.version).toBe(1);
    expect(m.root).toBe(PATHS.demo);
    expect(m.labels).toEqual(['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise']);
    expect(m.files).toHaveLength(28);
    expect(m.files.map((f) => f.path)).toEqual(m.files.map((f) => f.path).sort());
    for (const f of m.files) {
      expect(f.path.startsWith(`${PATHS.demo}/${f.speaker}_${f.label}/`)).toBe(true);
      expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(f.sampleRate).toBe(16000);
      expect(f.channels).toBe(1);
      expect(f.duration).toBeGreaterThan(0.5);
      expect(m.splits[f.split]).toContain(f.speaker);
      expect(f.error).toBeUndefined();
    }
    const spk = [...m.splits.train, ...m.splits.validation, ...m.splits.test];
    expect(spk.sort()).toEqual(['S01', 'S02', 'S03', 'S04']);
    // Deterministic: a second run writes the same bytes.
    await ingestStage(params).run(ctx());
    expect(fs.readFileSync(path.join(root, PATHS.manifest)).equals(first)).toBe(true);
  });

  it('ingest stage lists unreadable files with a reason instead of failing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ingest-bad-'));
    try {
      fs.cpSync(path.join(root, PATHS.demo), path.join(dir, 'data/raw'), { recursive: true });
      const cases = await writeBadAudio(path.join(dir, 'data/raw'));
      fs.writeFileSync(path.join(dir, 'data/raw/S01_angry/._S01_back_angry.wav'), 'macOS resource fork');
      const p = paramsSchema.parse({ data: { source: 'path', path: 'data/raw' } });
      const stage = ingestStage(p);
      expect(stage.deps).toEqual(['data/raw']);
      await stage.run({ ...ctx(p), root: dir, abs: (rel) => path.join(dir, rel) });
      const m = JSON.parse(fs.readFileSync(path.join(dir, PATHS.manifest), 'utf8')) as IngestManifest;
      expect(m.root).toBe('data/raw');
      for (const c of cases.filter((c) => c.kind === 'unreadable')) {
        const f = m.files.find((x) => x.path === `data/raw/${c.path}`);
        expect(f, c.name).toBeDefined();
        expect(f!.error).toMatch(/\S/);
        expect(f!).toMatchObject({ duration: 0, sampleRate: 0, channels: 0 });
      }
      expect(m.files.filter((x) => x.path.includes('/._'))).toEqual([]);
      const stereo = m.files.find((x) => x.path.endsWith('B01_stereo_sad.wav'))!;
      expect(stereo.channels).toBe(2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ingest stage names data.path when the folder is missing or has no audio', async () => {
    const p = paramsSchema.parse({ data: { source: 'path', path: 'nowhere' } });
    await expect(ingestStage(p).run(ctx(p))).rejects.toThrow(ConfigError);
    await expect(ingestStage(p).run(ctx(p))).rejects.toThrow(/data\.path/);
    fs.mkdirSync(path.join(root, 'empty/angry'), { recursive: true });
    const q = paramsSchema.parse({ data: { source: 'path', path: 'empty' } });
    await expect(ingestStage(q).run(ctx(q))).rejects.toThrow(/no \.wav files/);
  });

  it('ingest stage skips RAVDESS calm and labels a RAVDESS tree', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ravdess-'));
    try {
      const src = fs.readdirSync(path.join(root, PATHS.demo));
      const wav = fs.readFileSync(
        path.join(root, PATHS.demo, src[0], fs.readdirSync(path.join(root, PATHS.demo, src[0]))[0]),
      );
      for (const actor of ['01', '02', '03']) {
        for (const code of ['01', '02', '05']) {
          const target = path.join(dir, 'ravdess', `Actor_${actor}`, `03-01-${code}-01-01-01-${actor}.wav`);
          fs.mkdirSync(path.dirname(target), { recursive: true });
          fs.writeFileSync(target, wav);
        }
      }
      const p = paramsSchema.parse({ data: { source: 'path', path: 'ravdess' } });
      await ingestStage(p).run({ ...ctx(p), root: dir, abs: (rel) => path.join(dir, rel) });
      const m = JSON.parse(fs.readFileSync(path.join(dir, PATHS.manifest), 'utf8')) as IngestManifest;
      expect(m.labels).toEqual(['angry', 'neutral']);
      expect(m.files).toHaveLength(6);
      expect(m.skipped.map((s) => path.basename(s.path))).toEqual([
        '03-01-02-01-01-01-01.wav',
        '03-01-02-01-01-01-02.wav',
        '03-01-02-01-01-01-03.wav',
      ]);
      expect(new Set(m.files.map((f) => f.speaker))).toEqual(new Set(['A01', 'A02', 'A03']));
      expect(m.splits.train).toHaveLength(1);
      expect(m.splits.validation).toHaveLength(1);
      expect(m.splits.test).toHaveLength(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
