# The lockstep serving container: the Vertex AI custom-container contract (AIP_HTTP_PORT,
# AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE, AIP_STORAGE_URI) served by `lockstep serve`, which loads
# the model directory from AIP_STORAGE_URI and predicts with TensorFlow.js (wasm, then cpu).
# LOCKSTEP_LOG_URI (gs://bucket/prefix; set by lockstep's Vertex deploy when promotion/<env>.yaml
# has `logs: gs://...`) makes it upload its prediction logs there every 30 s and on SIGTERM, as
# <prefix>/<AIP_DEPLOYED_MODEL_ID>-<hostname>/predictions-*.jsonl, for monitor and the canary.
# The serving service account needs roles/storage.objectUser on that bucket.
# Built by .github/workflows/pr.yml (when its inputs change) and deploy.yml with Docker Buildx,
# pushed to Artifact Registry tagged with the commit; Vertex AI deploys and jobs reference it by
# digest (<region>-docker.pkg.dev/<project>/<repo>/lockstep@sha256:...), never by tag.
# By hand: docker build -t <region>-docker.pkg.dev/<project>/<repo>/lockstep:<commit> .
#
# Two stages: `build` compiles the TypeScript into dist/cli/ with the development dependencies
# (esbuild); the runtime stage holds production dependencies and that compiled JavaScript only,
# so no TypeScript loader runs in the container. test/container/image.test.ts lays out this
# file's COPY and RUN npm lines in a temp folder, with the same npm flags, and runs the CMD and
# the HEALTHCHECK there: keep those lines in the forms it reads (see test/support/image.ts).
#
# The base image is pinned by digest (the tag stays for readers and Dependabot): both stages use
# the same node:20-slim image. To move it: `docker buildx imagetools inspect node:20-slim` and
# replace the digest in both FROM lines. test/container/dockerfile.test.ts refuses a FROM without
# a digest and a final stage that runs as root.
FROM node:20-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0 AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY bin ./bin
COPY lib ./lib
COPY stages ./stages
RUN node lib/cli/build.mjs

FROM node:20-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0

ENV NODE_ENV=production \
    AIP_HTTP_PORT=8080 \
    AIP_HEALTH_ROUTE=/health \
    AIP_PREDICT_ROUTE=/predict

WORKDIR /app

# Dependencies first, so code changes reuse this layer. The optional native tfjs-node binding
# is skipped (the server uses the wasm backend, whose .wasm files ship in
# @tensorflow/tfjs-backend-wasm) and no install scripts run.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force

# The compiled CLI and its launcher; no TypeScript sources.
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY params.yaml ./

# Prediction logs go to /app/.lockstep/logs/<endpoint>/ (and to LOCKSTEP_LOG_URI when set).
RUN mkdir -p /app/.lockstep && chown node:node /app/.lockstep
USER node

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.AIP_HTTP_PORT + process.env.AIP_HEALTH_ROUTE).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The server's V8 flags (lib/serving/young-generation.ts): a fixed young generation (fewer
# collection pauses per request) and GC on each heap's own thread (a shadow candidate's at nice 19).
CMD ["node", "--min-semi-space-size=16", "--single-threaded-gc", "bin/lockstep.mjs", "serve"]
