/**
 * Open-loop load at a constant arrival rate, in a process of its own (bench/serve.ts spawns it):
 * the bench process has trained and loaded a model, and its garbage collection and heap would
 * otherwise stall the schedule and count as server latency.
 *
 * Request i is sent at t0 + i/rps over keep-alive connections, and its latency counts from that
 * scheduled time, so queueing is included (no coordinated omission). autocannon's own rate limit
 * releases each second's budget in one burst at the start of the second, which measures burst
 * queueing rather than latency at a rate.
 *
 * Usage: node paced-load.mjs <url> <body-file> <content-type> <rps> <seconds>
 * Prints one JSON line: { latencies, lags, errors } (milliseconds, sorted).
 */
import fs from 'node:fs';
import http from 'node:http';

const [url, bodyFile, contentType, rpsArg, secondsArg] = process.argv.slice(2);
const body = fs.readFileSync(bodyFile);
const rps = Number(rpsArg);
const seconds = Number(secondsArg);
if (!url || !(rps > 0) || !(seconds > 0)) {
  console.error('usage: paced-load.mjs <url> <body-file> <content-type> <rps> <seconds>');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const total = Math.round(rps * seconds);
const latencies = [];
// How late this process sent each request against its schedule: a stall of the generator itself
// (the CPU taken by other processes) counts as latency, so it is reported beside it.
const lags = [];
let errors = 0;
const headers = { 'content-type': contentType, 'content-length': String(body.length) };
const send = (scheduled) =>
  new Promise((resolve) => {
    lags.push(performance.now() - scheduled);
    const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) errors++;
        latencies.push(performance.now() - scheduled);
        resolve();
      });
    });
    req.on('error', () => {
      errors++;
      resolve();
    });
    req.end(body);
  });

// Open the connections the rate needs before the clock starts, as a warm generator has them.
const warm = Math.min(32, Math.max(1, Math.ceil(rps / 50)));
await Promise.all(Array.from({ length: warm }, () => send(performance.now())));
latencies.length = 0;
lags.length = 0;
errors = 0;

const pending = [];
const t0 = performance.now() + 20;
for (let i = 0; i < total; i++) {
  const at = t0 + (i * 1000) / rps;
  const wait = at - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  pending.push(send(at));
}
await Promise.all(pending);
agent.destroy();
const byValue = (a, b) => a - b;
process.stdout.write(
  JSON.stringify({ latencies: latencies.sort(byValue), lags: lags.sort(byValue), errors }) + '\n',
);
