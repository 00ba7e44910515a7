/** Runs eSpeak NG in a fresh instance and returns the WAV bytes it wrote (`-w <file>`). */
export function synthesize(wasmModule: object, args: string[]): Promise<Uint8Array>;
/** A reusable eSpeak NG instance whose memory is restored before every run. */
export function createSession(wasmModule: object): Promise<{ synthesize(args: string[]): Uint8Array }>;
