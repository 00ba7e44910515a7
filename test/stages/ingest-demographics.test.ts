import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeWav } from '../../lib/audio/wav.ts';
import { buildManifest } from '../../stages/ingest/manifest.ts';
import { ConfigError } from '../../lib/errors.ts';
import { conventionGender, readDemographics } from '../../stages/ingest/demographics.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function tone(seconds: number, rate: number): Float32Array {
  return Float32Array.from({ length: Math.round(seconds * rate) }, (_, i) => 0.3 * Math.sin(i / 5));
}

describe('ingest demographics', () => {
  it.each([
    ['ravdess', 'A01', 'male'],
    ['ravdess', 'A12', 'female'],
    ['ravdess', 'A23', 'male'],
    ['tess', 'OAF', 'female'],
    ['tess', 'YAF', 'female'],
    ['tess', 'S01', undefined],
    ['cremad', '1001', undefined],
    ['folder', 'A01', undefined],
  ] as const)('conventionGender %s speaker %s is %s', (convention, speaker, gender) => {
    expect(conventionGender({ convention, speaker })).toBe(gender);
  });

  it('manifest records gender, corpus and format from conventions and the CREMA-D demographics file', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-demographics-'));
    const write = (rel: string, bytes: Buffer | string) => {
      fs.mkdirSync(path.dirname(path.join(dir!, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir!, rel), bytes);
    };
    write('ravdess/03-01-05-01-02-01-07.wav', encodeWav([tone(1, 16000)], 16000));
    write('ravdess/03-01-04-01-02-01-08.wav', encodeWav([tone(1, 16000)], 16000));
    write('cremad/1001_DFA_ANG_XX.wav', encodeWav([tone(2, 16000), tone(2, 16000)], 16000, '24'));
    write('cremad/1002_DFA_SAD_XX.wav', encodeWav([tone(0.5, 8000)], 8000, '32f'));
    write('tess/OAF_back_angry.wav', encodeWav([tone(1, 24414)], 24414));
    write(
      'VideoDemographics.csv',
      'ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n1002,21,Female,Caucasian,Not Hispanic\n',
    );
    const m = await buildManifest(dir, { rootName: 'data' });
    const by = Object.fromEntries(m.files.map((f) => [path.posix.basename(f.path), f]));
    expect(by['03-01-05-01-02-01-07.wav']).toMatchObject({
      speaker: 'A07',
      gender: 'male',
      corpus: 'ravdess',
      format: 'pcm16 mono',
    });
    expect(by['03-01-04-01-02-01-08.wav']).toMatchObject({ speaker: 'A08', gender: 'female' });
    expect(by['1001_DFA_ANG_XX.wav']).toMatchObject({
      gender: 'male',
      corpus: 'cremad',
      format: 'pcm24 stereo',
    });
    expect(by['1002_DFA_SAD_XX.wav']).toMatchObject({
      gender: 'female',
      format: 'float32 mono',
      sampleRate: 8000,
    });
    expect(by['OAF_back_angry.wav']).toMatchObject({ gender: 'female', corpus: 'tess', sampleRate: 24414 });

    // Without the demographics file, CREMA-D speakers have no gender (nothing speaks for them).
    fs.rmSync(path.join(dir, 'VideoDemographics.csv'));
    const bare = await buildManifest(dir, { rootName: 'data', corpus: 'mine' });
    const cremad = bare.files.filter((f) => f.path.includes('cremad'));
    expect(cremad.map((f) => f.gender)).toEqual([undefined, undefined]);
    expect(new Set(bare.files.map((f) => f.corpus))).toEqual(new Set(['mine']));
  });

  it.each([
    ['a byte-order mark and CRLF line ends', '\ufeffspeaker,gender\r\nS01,female\r\nS02,M\r\n'],
    ['quoted fields', '"speaker","gender"\n"S01","Female"\n"S02","male"\n'],
    ['blank lines, spaces and a repeated row', 'Speaker , Gender\n\nS01 , f\nS02,male\nS02,male\n'],
    [
      'a short row and an unknown gender',
      'speaker,gender,age\nS01,female,30\nS02,male\nS03,unknown,40\nS04\n',
    ],
  ])('readDemographics reads a speakers.csv with %s', (_, text) => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-demographics-'));
    fs.writeFileSync(path.join(dir, 'speakers.csv'), text);
    expect(Object.fromEntries(readDemographics(dir, 'data'))).toEqual({ S01: 'female', S02: 'male' });
  });

  it.each([
    [
      'id,sex\nS01,female\n',
      'data/speakers.csv: no "speaker" column in the header "id,sex". Name its columns speaker,gender (one row per speaker).',
    ],
    [
      'speaker\nS01\n',
      'data/speakers.csv: no "gender" column in the header "speaker". Name its columns speaker,gender (one row per speaker).',
    ],
    [
      'speaker,gender\nS01,female\nS01,male\n',
      'data/speakers.csv: speaker listed as female and as male "S01". Keep one row per speaker.',
    ],
    ['speaker,gender\n"S01,female\n', /^data\/speakers\.csv: is not a readable CSV file\. Fix it \(.+\)\.$/],
  ])('readDemographics refuses speakers.csv %j with a one-line error', (text, expected) => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-demographics-'));
    fs.writeFileSync(path.join(dir, 'speakers.csv'), text);
    let caught: unknown;
    try {
      readDemographics(dir, 'data');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as Error).message;
    if (typeof expected === 'string') expect(message).toBe(expected);
    else expect(message).toMatch(expected);
    expect(message).not.toContain('\n');
  });
});
