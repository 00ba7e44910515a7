export function synthesize(wasmModule: object, args: string[]): Promise<Uint8Array>;
