// One eSpeak NG run: the Emscripten build runs its command line once per instance, so each
// utterance gets a fresh instance of the (already compiled) module. Shared by the worker threads
// and the in-thread fallback.
/* global WebAssembly */
import ESpeakNg from 'espeak-ng';

/**
 * Runs eSpeak NG with `args` (which must write `-w /out.wav`) and returns the WAV bytes.
 * @param {WebAssembly.Module} wasmModule compiled espeak-ng.wasm
 * @param {string[]} args
 * @returns {Promise<Uint8Array>}
 */
export async function synthesize(wasmModule, args) {
  const messages = [];
  const instance = await ESpeakNg({
    arguments: args,
    instantiateWasm: (imports, done) => {
      // eSpeak seeds its breath-noise generator from the clock (srand(time(NULL))), which made
      // breathy voices differ run to run: a frozen clock makes every run byte-identical.
      const env = { ...imports.env, emscripten_date_now: () => 0, emscripten_get_now: () => 0 };
      WebAssembly.instantiate(wasmModule, { ...imports, env }).then((inst) => done(inst));
      return {};
    },
    print: (line) => messages.push(line),
    printErr: (line) => messages.push(line),
  });
  const out = args[args.indexOf('-w') + 1];
  let wav;
  try {
    wav = instance.FS.readFile(out);
  } catch {
    throw new Error(`espeak-ng wrote no audio (${messages.join(' ').slice(0, 200) || 'no message'})`);
  }
  return new Uint8Array(wav);
}
