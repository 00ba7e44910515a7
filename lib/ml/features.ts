/**
 * Fast, Meyda-equivalent audio features (the home of the concept; callers import from here):
 * - `features/names.ts`: the config, feature names and per-clip counts;
 * - `features/tables.ts`: window, mel/chroma filter banks and Bark bands, built as Meyda does;
 * - `features/real-fft.ts`: the amplitude spectrum through a half-size complex FFT;
 * - `features/frame-extractor.ts`: every per-frame feature from one spectrum;
 * - `features/clip.ts`: a clip's frames and summary, from decoded audio.
 */
export * from './features/names.ts';
export { FrameExtractor } from './features/frame-extractor.ts';
export * from './features/clip.ts';
