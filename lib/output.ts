/**
 * Where commands write: stdout for results, stderr for progress and diagnostics. Commands receive
 * an `Output` so tests can capture it without touching process streams.
 */
export interface Output {
  /** Result text or JSON for the user (stdout). */
  out(line: string): void;
  /** Progress, warnings and reasons (stderr). */
  err(line: string): void;
  /** True when stderr is a terminal, so progress may draw a bar. */
  isTTY: boolean;
}

export const processOutput: Output = {
  out: (line) => process.stdout.write(line.endsWith('\n') ? line : line + '\n'),
  err: (line) => process.stderr.write(line.endsWith('\n') ? line : line + '\n'),
  isTTY: Boolean(process.stderr.isTTY) && process.env.CI !== 'true',
};

/** An Output that records lines in memory (for tests and for embedding). */
export function memoryOutput(): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    isTTY: false,
    out: (l) => void stdout.push(l),
    err: (l) => void stderr.push(l),
  };
}
