/**
 * How the demo corpus expresses emotion: each synthetic speaker has a voice (eSpeak NG variant,
 * base pitch, pitch range, rate, loudness, expressiveness) and each emotion shifts those through
 * prosody. Every utterance adds jitter, so emotions are learnable from prosody but overlap, as
 * in recorded speech. All randomness comes from seeded streams keyed by speaker/word/emotion.
 */
import { createRng } from './rng.ts';

/** The carrier sentence of TESS: "Say the word <word>". */
export const CARRIER = 'Say the word';

/**
 * Target words (TESS-style monosyllables). Speakers say the first `data.words` of them, in order,
 * so every speaker says the same words as in TESS.
 */
export const WORDS = `back bar base bath bean beg bite boat bone book bought burn cab calm came
cause chain chair chalk chat check cheek chief choice cool dab date dead death deep dime dip ditch
dodge dog doll door fail fall far fat fit five food gap gas gaze germ get gin goal good goose gun
half hall hash hate have haze hire hit hole home hurl jail jar join judge kick kill king kite knock
laud lean learn lease lid life limb live loaf long lore lose lot love luck make match merge mess
met mill mob mode mood moon mop mouse nag name near neat nice note numb pad pain pass pearl peg
perch phone pick pike pole pool puff rag raid rain raise rat reach read red ring ripe road room
rose rot rough rush said sail search seize sell shack shall shawl sheep shirt should shout size
soap soup sour south sub such sure take talk tape team tell thin third thought thumb time tip
tire tool tough turn vine voice void vote wag walk wash week wheat when which whip white wife
wire witch yearn yes young youth bag bed bell bird cake cap coat cut deck dish`
  .split(/\s+/)
  .filter((w, i, all) => w && all.indexOf(w) === i);

/** Prosody parameters in eSpeak NG's units. */
export interface Prosody {
  /** `-p`: 0..99 (50 = voice default). */
  pitch: number;
  /** `-P`: pitch range 0..99 (50 = default). */
  range: number;
  /** `-s`: words per minute. */
  rate: number;
  /** `-a`: amplitude 0..200 (100 = default). */
  amplitude: number;
  /** `-g`: extra gap between words, in units of 10 ms. */
  gap: number;
}

/** Per-emotion shift from a speaker's neutral prosody, plus a post-processing colour. */
interface EmotionProfile extends Prosody {
  /** Amplitude tremolo depth (fear), 0 = none. */
  tremolo: number;
  /** Soft-saturation drive (anger), 0 = none. */
  drive: number;
  /** One-pole low-pass amount (sadness: dull voice), 0 = none. */
  dull: number;
}

/**
 * Deltas relative to the speaker's neutral voice (rate and amplitude as factors). The numbers
 * follow the usual acoustic correlates of emotional speech: anger and happiness are louder,
 * faster and wider in pitch; sadness is low, slow, flat and soft; fear is high and fast with a
 * tremor; surprise has the widest pitch excursion; disgust is low and slow.
 */
const EMOTION_PROFILES: Record<string, EmotionProfile> = {
  angry: { pitch: 6, range: 22, rate: 1.12, amplitude: 1.45, gap: 0, tremolo: 0, drive: 2.2, dull: 0 },
  disgust: { pitch: -8, range: -8, rate: 0.84, amplitude: 0.95, gap: 2, tremolo: 0, drive: 0.6, dull: 0.25 },
  fear: { pitch: 16, range: 12, rate: 1.18, amplitude: 0.8, gap: 0, tremolo: 0.22, drive: 0, dull: 0 },
  happy: { pitch: 12, range: 28, rate: 1.07, amplitude: 1.2, gap: 0, tremolo: 0, drive: 0, dull: 0 },
  neutral: { pitch: 0, range: 0, rate: 1, amplitude: 1, gap: 0, tremolo: 0, drive: 0, dull: 0 },
  sad: { pitch: -12, range: -22, rate: 0.78, amplitude: 0.7, gap: 3, tremolo: 0.05, drive: 0, dull: 0.55 },
  surprise: { pitch: 18, range: 40, rate: 0.96, amplitude: 1.15, gap: 1, tremolo: 0, drive: 0, dull: 0 },
};

/** eSpeak NG voice variants used for the synthetic speakers (classic male/female variants). */
const VOICES = [
  'en-us+f3',
  'en-us+m3',
  'en+f2',
  'en-us+m1',
  'en-us+f4',
  'en+m2',
  'en-us+f1',
  'en-us+m4',
  'en+f5',
  'en-us+m7',
  'en-us+f2',
  'en+m5',
  'en-us+f5',
  'en-us+m6',
  'en+f4',
  'en-us+m2',
];

export interface Speaker {
  id: string;
  voice: string;
  female: boolean;
  neutral: Prosody;
  /** Scales how strongly this speaker acts each emotion (0.75..1.3). */
  expressiveness: number;
}

/** One utterance to synthesize: what eSpeak NG is asked, and how to colour and augment it. */
export interface Utterance {
  speaker: string;
  word: string;
  emotion: string;
  /** TESS-style relative path: `<SPK>_<emotion>/<SPK>_<word>_<emotion>.wav`. */
  path: string;
  voice: string;
  text: string;
  prosody: Prosody;
  tremolo: number;
  tremoloHz: number;
  drive: number;
  dull: number;
  /** Gain augmentation, in dB. */
  gainDb: number;
  /** Noise RMS relative to full scale. */
  noise: number;
  /** Seed for this utterance's noise. */
  noiseSeed: number;
}

export interface PlanOptions {
  speakers: number;
  words: number;
  emotions: readonly string[];
  seed: number;
  noise: number;
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** Speaker ids `S01`, `S02`, ... */
export function speakerId(index: number): string {
  return `S${String(index + 1).padStart(2, '0')}`;
}

/** The synthetic speakers for a seed: voice, neutral prosody and expressiveness. */
export function planSpeakers(count: number, seed: number): Speaker[] {
  return Array.from({ length: count }, (_, i) => {
    const rng = createRng(seed, `speaker:${i}`);
    const voice = VOICES[i % VOICES.length];
    const female = voice.includes('+f');
    return {
      id: speakerId(i),
      voice,
      female,
      neutral: {
        pitch: female ? rng.uniform(48, 66) : rng.uniform(28, 46),
        range: rng.uniform(38, 58),
        rate: rng.uniform(150, 180),
        amplitude: rng.uniform(85, 110),
        gap: 0,
      },
      expressiveness: rng.uniform(0.75, 1.3),
    };
  });
}

/** Every utterance of the corpus, in a fixed order (speaker, emotion, word). */
export function planUtterances(options: PlanOptions): Utterance[] {
  const { emotions, seed, noise } = options;
  if (options.words > WORDS.length) {
    throw new RangeError(`data.words: at most ${WORDS.length} words are available`);
  }
  const words = WORDS.slice(0, options.words);
  const plan: Utterance[] = [];
  for (const speaker of planSpeakers(options.speakers, seed)) {
    for (const emotion of emotions) {
      const profile = EMOTION_PROFILES[emotion];
      if (!profile) throw new RangeError(`unknown emotion "${emotion}"`);
      for (const word of words) {
        const rng = createRng(seed, `utt:${speaker.id}:${word}:${emotion}`);
        const e = speaker.expressiveness * rng.uniform(0.75, 1.2);
        const n = speaker.neutral;
        // Jitter is about a third of the gap between neighbouring emotions, so classes overlap.
        const prosody: Prosody = {
          pitch: Math.round(clamp(n.pitch + e * profile.pitch + rng.normal() * 3, 0, 99)),
          range: Math.round(clamp(n.range + e * profile.range + rng.normal() * 5, 0, 99)),
          rate: Math.round(clamp(n.rate * (1 + e * (profile.rate - 1)) * (1 + rng.normal() * 0.05), 80, 320)),
          amplitude: Math.round(
            clamp(n.amplitude * (1 + e * (profile.amplitude - 1)) * (1 + rng.normal() * 0.08), 10, 200),
          ),
          gap: Math.max(0, Math.round(profile.gap * e + rng.uniform(-0.5, 0.5))),
        };
        plan.push({
          speaker: speaker.id,
          word,
          emotion,
          path: `${speaker.id}_${emotion}/${speaker.id}_${word}_${emotion}.wav`,
          voice: speaker.voice,
          text: `${CARRIER} ${word}`,
          prosody,
          tremolo: clamp(profile.tremolo * e * rng.uniform(0.6, 1.3), 0, 0.6),
          tremoloHz: rng.uniform(4.5, 8),
          drive: Math.max(0, profile.drive * e * rng.uniform(0.6, 1.3)),
          dull: clamp(profile.dull * e * rng.uniform(0.6, 1.3), 0, 0.9),
          gainDb: rng.uniform(-6, 2),
          noise: noise * rng.uniform(0.5, 1.5),
          noiseSeed: Math.floor(rng.next() * 2 ** 31),
        });
      }
    }
  }
  return plan;
}

/** The command-line arguments eSpeak NG gets for one utterance (written to `/out.wav`). */
export function espeakArgs(u: Utterance, wavPath = '/out.wav'): string[] {
  const p = u.prosody;
  return [
    '-v',
    u.voice,
    '-p',
    String(p.pitch),
    '-P',
    String(p.range),
    '-s',
    String(p.rate),
    '-a',
    String(p.amplitude),
    '-g',
    String(p.gap),
    '-w',
    wavPath,
    u.text,
  ];
}
