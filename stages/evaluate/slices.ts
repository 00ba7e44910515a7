/**
 * What evaluate needs beyond the features: each test clip's attributes from the ingest manifest
 * (gender, corpus, duration, sample rate, format), joined on the clip's path, and the
 * per-clip predictions it writes for the gate's paired comparisons.
 */
import fs from 'node:fs';
import { z } from 'zod';
import type { ClipInfo } from '../../lib/slices/compute.ts';
import { parseValue } from '../../lib/yaml-source.ts';

const manifestSchema = z.looseObject({
  files: z.array(
    z.looseObject({
      path: z.string(),
      sha256: z.string().optional(),
      speaker: z.string(),
      duration: z.number().optional(),
      sampleRate: z.number().optional(),
      format: z.string().optional(),
      corpus: z.string().optional(),
      gender: z.string().optional(),
    }),
  ),
});

/** A test clip's identity and attributes. */
export interface TestClip extends ClipInfo {
  path: string;
  /** Content hash of the audio (from the manifest), so a baseline's predictions pair by content. */
  sha256?: string;
}

/**
 * The test clips' attributes: the manifest entry of each features path, or only the speaker when
 * there is no manifest (features written by hand).
 */
export function readTestClips(
  manifestFile: string | undefined,
  paths: string[],
  speakers: string[],
): TestClip[] {
  let byPath = new Map<string, z.infer<typeof manifestSchema>['files'][number]>();
  if (manifestFile && fs.existsSync(manifestFile)) {
    const text = fs.readFileSync(manifestFile, 'utf8');
    const manifest = parseValue(manifestSchema, JSON.parse(text), manifestFile, {
      text,
      suffix: ', or re-run the ingest stage',
    });
    byPath = new Map(manifest.files.map((f) => [f.path, f]));
  }
  return paths.map((p, i) => {
    const f = byPath.get(p);
    const clip: TestClip = { path: p, speaker: speakers[i] };
    if (!f) return clip;
    if (f.sha256) clip.sha256 = f.sha256;
    if (f.gender) clip.gender = f.gender;
    if (f.corpus) clip.corpus = f.corpus;
    if (f.duration) clip.duration = f.duration;
    if (f.sampleRate) clip.sampleRate = f.sampleRate;
    if (f.format) clip.format = f.format;
    return clip;
  });
}
