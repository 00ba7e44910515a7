/**
 * The models of the release-loop tests, trained on the tiny demo corpus in a few seconds: a
 * stable model and good retrained candidates (other seeds), and the three bad candidates the
 * canary must stop: one trained for a single epoch, one trained on shuffled labels, and one
 * collapsed onto three classes (trained with every label mapped into three).
 */
import fs from 'node:fs';
import path from 'node:path';
import { makeAudioModel, labelOf } from '../support/audio-model.ts';
import { makeTinyCorpus } from '../support/corpus.ts';

export interface ReleaseModels {
  /** Demo clips (WAV files) the traffic is drawn from. */
  clips: string[];
  stable: string;
  /** Good candidates, each a different seed. */
  good: string[];
  oneEpoch: string;
  shuffled: string;
  collapsed: string;
}

/** Deterministic shuffle (a fixed LCG), so the bad model is the same on every run. */
function shuffle<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Builds the corpus and every model under `dir`. */
export async function makeReleaseModels(dir: string): Promise<ReleaseModels> {
  const clips = await makeTinyCorpus(path.join(dir, 'corpus'), { speakers: 4 });
  const models = path.join(dir, 'models');
  fs.mkdirSync(models, { recursive: true });
  const at = (name: string) => path.join(models, name);
  const labels = clips.map(labelOf);
  await makeAudioModel(at('stable'), clips, { epochs: 40, seed: 3 });
  const good = [4, 5, 6].map((seed) => at(`good-${seed}`));
  for (const [i, g] of good.entries()) await makeAudioModel(g, clips, { epochs: 40, seed: 4 + i });
  await makeAudioModel(at('one-epoch'), clips, { epochs: 1, seed: 9 });
  await makeAudioModel(at('shuffled'), clips, { epochs: 40, seed: 3, labels: shuffle(labels, 17) });
  const three = ['angry', 'happy', 'sad'];
  const kinds = [...new Set(labels)].sort();
  await makeAudioModel(at('collapsed'), clips, {
    epochs: 40,
    seed: 3,
    labels: labels.map((l) => three[kinds.indexOf(l) % 3]),
  });
  return {
    clips,
    stable: at('stable'),
    good,
    oneEpoch: at('one-epoch'),
    shuffled: at('shuffled'),
    collapsed: at('collapsed'),
  };
}
