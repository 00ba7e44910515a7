/**
 * A job's log lines as its replicas write them: numbered chunks under
 * `jobs/<key>/logs/<job id>/<replica>/<seq>.txt` (lib/compute/worker.ts). Each poll lists the
 * prefix once and reads only the chunks not seen before, so a line costs one read, once.
 */
import type { NamedStore } from './named.ts';

export class LogFollower {
  private readonly seen = new Set<string>();

  constructor(
    private readonly named: NamedStore,
    private readonly prefix: string,
    private readonly onLine: (replica: string, line: string) => void,
  ) {}

  /** Prints the lines of chunks that appeared since the last poll, replica by replica in order. */
  async poll(): Promise<void> {
    const fresh = (await this.named.list(this.prefix)).filter((n) => !this.seen.has(n));
    // Read together, printed in name order (each replica's chunks are numbered).
    const texts = await Promise.all(fresh.map((n) => this.named.read(n)));
    fresh.forEach((logName, i) => {
      this.seen.add(logName);
      const replica = logName.split('/').slice(-2, -1)[0]!;
      for (const line of (texts[i]?.text ?? '').split('\n').filter(Boolean)) this.onLine(replica, line);
    });
  }
}
