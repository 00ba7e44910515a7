import { describe, expect, it } from 'vitest';
import { createProgress } from '../../lib/progress.ts';
import { memoryOutput } from '../../lib/output.ts';

describe('progress', () => {
  it('progress prints periodic plain lines when stderr is not a TTY', () => {
    const out = memoryOutput();
    const p = createProgress(out, 'hashing', 4, { intervalMs: 0 });
    p.tick(1);
    p.tick(3);
    p.stop();
    expect(out.stderr).toEqual(['hashing: 1/4 files (25%)', 'hashing: 4/4 files (100%)']);
  });

  it('progress ends with a final line after an interim one, and stays silent for quick jobs', () => {
    const slow = memoryOutput();
    const p0 = createProgress(slow, 'push', 2, { intervalMs: 0, unit: 'objects' });
    p0.tick(1);
    (p0 as unknown as { tick(n: number): void }).tick(0);
    p0.stop();
    expect(slow.stderr.at(-1)).toBe('push: 1/2 objects (50%)');
    const out = memoryOutput();
    const p = createProgress(out, 'hashing', 4, { intervalMs: 60_000 });
    p.tick(4);
    p.stop();
    expect(out.stderr).toEqual([]);
  });
});
