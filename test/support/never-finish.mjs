/**
 * Preloaded into a fake Vertex AI replica (`NODE_OPTIONS=--import …`) by tests that need a job
 * which keeps running until it is cancelled: the replica's own command never starts, and the
 * process stays alive until the fake's cancel sends it SIGTERM.
 */
setInterval(() => {}, 1 << 30);
await new Promise(() => {});
