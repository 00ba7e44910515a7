/**
 * `npm run bench -- faults`: `lockstep push` and `lockstep pull` SIGKILLed at random points against
 * the fake GCS server, 20 trials each (FAULTS_BENCH_TRIALS): how many kills landed mid-command,
 * how many objects were checked against their names afterwards, how many were damaged (must be
 * 0), and how many finished objects the next run transferred again (must be 0).
 */
import os from 'node:os';
import { FakeGcs } from '../test/support/fake-gcs.ts';
import { pullKillTrials, pushKillTrials } from '../test/support/remote-kills.ts';

const TRIALS = Number(process.env.FAULTS_BENCH_TRIALS ?? 20);

export default async function bench(): Promise<Record<string, number | string>> {
  const fake = await FakeGcs.start();
  try {
    const push = await pushKillTrials(fake, TRIALS);
    const pull = await pullKillTrials(fake, TRIALS);
    const out: Record<string, number | string> = { load_average: os.loadavg()[0]!.toFixed(1) };
    for (const [name, f] of [
      ['push', push],
      ['pull', pull],
    ] as const) {
      out[`${name}_trials`] = f.trials;
      out[`${name}_kills_mid_command`] = f.killed;
      out[`${name}_objects_checked`] = f.objectsChecked;
      out[`${name}_damaged_objects`] = f.badObjects;
      out[`${name}_transferred_twice`] = f.transferredTwice;
      out[`${name}_failed_reruns`] = f.failedReruns;
      if (f.firstFailure) out[`${name}_first_failure`] = f.firstFailure;
    }
    return out;
  } finally {
    await fake.close();
  }
}
