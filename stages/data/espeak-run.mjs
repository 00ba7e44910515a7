/* global WebAssembly */
// eSpeak NG runs. The Emscripten build runs its command line once per instance, and a fresh
// instance costs far more than the synthesis itself; so a session instantiates once, snapshots
// the initialized memory, and for every utterance restores the snapshot and calls main again.
// `synthesize` (a fresh instance per call) is the reference the session is tested against.
// Shared by the worker threads and the in-thread path.
import ESpeakNg from 'espeak-ng';

/** Only the data English synthesis reads: the phoneme tables, English, and the voice variants. */
const NEEDED = /\/(phontab|phonindex|phondata|intonations|en_dict|lang\/gmw\/en[^/]*|voices\/!v\/[^/]+)$/;

/**
 * Replaces Emscripten's unpacking of the embedded espeak-ng-data (445 files, most of them other
 * languages) with one that creates only the files English synthesis reads. The bytes stay in
 * wasm memory (the file system owns slices of it), exactly as in the original loader.
 */
function loadEnglishFiles(module, memory, ptr) {
  const u32 = new Uint32Array(memory.buffer);
  const bytes = new Uint8Array(memory.buffer);
  const FS = module.FS;
  do {
    const at = u32[ptr >> 2];
    const len = u32[(ptr + 4) >> 2];
    const content = u32[(ptr + 8) >> 2];
    ptr += 12;
    let end = at;
    while (bytes[end]) end++;
    const name = new TextDecoder().decode(bytes.subarray(at, end));
    if (NEEDED.test(name)) {
      FS.createPath('/', name.slice(0, name.lastIndexOf('/')), true, true);
      FS.createDataFile(name, null, new Int8Array(memory.buffer, content, len), true, true, true);
    }
  } while (u32[ptr >> 2]);
}

/** Instantiates eSpeak NG; `args` runs main at once (undefined: not run). */
async function instantiate(wasmModule, args) {
  const messages = [];
  const module = { messages };
  // The Emscripten file system signals "already exists" with thrown errors while it unpacks the
  // voice data; capturing their stack traces was a third of the run time.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    await ESpeakNg(
      Object.assign(module, {
        // A copy: Emscripten prepends the program name to the array it is given.
        arguments: args ? [...args] : [],
        noInitialRun: args === undefined,
        instantiateWasm: (imports, done) => {
          // eSpeak seeds its breath-noise generator from the clock (srand(time(NULL))), which
          // made breathy voices differ run to run: a frozen clock makes runs byte-identical.
          const env = {
            ...imports.env,
            emscripten_date_now: () => 0,
            emscripten_get_now: () => 0,
            _emscripten_fs_load_embedded_files: (ptr) => loadEnglishFiles(module, module.exports.memory, ptr),
          };
          WebAssembly.instantiate(wasmModule, { ...imports, env }).then((inst) => {
            module.exports = inst.exports;
            done(inst);
          });
          return {};
        },
        print: (line) => messages.push(line),
        printErr: (line) => messages.push(line),
      }),
    );
  } finally {
    Error.stackTraceLimit = limit;
  }
  return module;
}

function takeOutput(module, args) {
  const out = args[args.indexOf('-w') + 1];
  let wav;
  try {
    wav = module.FS.readFile(out);
    module.FS.unlink(out);
  } catch {
    throw new Error(`espeak-ng wrote no audio (${module.messages.join(' ').slice(0, 200) || 'no message'})`);
  }
  module.messages.length = 0;
  return new Uint8Array(wav);
}

/**
 * Runs eSpeak NG with `args` (which must write `-w <file>`) in a fresh instance and returns the
 * WAV bytes.
 * @param {object} wasmModule compiled espeak-ng.wasm
 * @param {string[]} args
 * @returns {Promise<Uint8Array>}
 */
export async function synthesize(wasmModule, args) {
  return takeOutput(await instantiate(wasmModule, args), args);
}

/**
 * A reusable eSpeak NG: one instance whose initialized memory is restored before each run, so
 * every run starts from the same state as a fresh instance.
 * @param {object} wasmModule compiled espeak-ng.wasm
 * @returns {Promise<{ synthesize(args: string[]): Uint8Array }>}
 */
export async function createSession(wasmModule) {
  const module = await instantiate(wasmModule, undefined);
  const { memory, stackSave, stackRestore, stackAlloc } = module.exports;
  const main = module.exports.__main_argc_argv;
  const snapshot = new Uint8Array(memory.buffer).slice();
  const stackTop = stackSave();
  const encoder = new TextEncoder();
  return {
    synthesize(args) {
      const heap = new Uint8Array(memory.buffer);
      heap.set(snapshot);
      if (heap.length > snapshot.length) heap.fill(0, snapshot.length);
      stackRestore(stackTop);
      const argv = ['espeak-ng', ...args];
      const pointers = argv.map((arg) => {
        const bytes = encoder.encode(arg);
        const ptr = stackAlloc(bytes.length + 1);
        const view = new Uint8Array(memory.buffer);
        view.set(bytes, ptr);
        view[ptr + bytes.length] = 0;
        return ptr;
      });
      const table = stackAlloc((pointers.length + 1) * 4);
      const u32 = new Uint32Array(memory.buffer);
      pointers.forEach((p, i) => (u32[(table >> 2) + i] = p));
      u32[(table >> 2) + pointers.length] = 0;
      try {
        main(argv.length, table);
      } catch (err) {
        // exit() inside main unwinds with Emscripten's ExitStatus: a normal end.
        if (!(err && err.name === 'ExitStatus')) throw err;
      } finally {
        stackRestore(stackTop);
      }
      return takeOutput(module, args);
    },
  };
}
