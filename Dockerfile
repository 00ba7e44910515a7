# The lockstep serving container: the Vertex AI custom-container contract (AIP_HTTP_PORT,
# AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE, AIP_STORAGE_URI) served by `lockstep serve`, which loads
# the model directory from AIP_STORAGE_URI and predicts with TensorFlow.js (wasm, then cpu).
# LOCKSTEP_LOG_URI (gs://bucket/prefix; set by lockstep's Vertex deploy when promotion/<env>.yaml
# has `logs: gs://...`) makes it upload its prediction logs there every 30 s and on SIGTERM, as
# <prefix>/<AIP_DEPLOYED_MODEL_ID>-<hostname>/predictions-*.jsonl, for monitor and the canary.
# The serving service account needs roles/storage.objectUser on that bucket.
# Build: docker build -t <region>-docker.pkg.dev/<project>/<repo>/lockstep:<tag> .
FROM node:20-slim

ENV NODE_ENV=production \
    AIP_HTTP_PORT=8080 \
    AIP_HEALTH_ROUTE=/health \
    AIP_PREDICT_ROUTE=/predict

WORKDIR /app

# Dependencies first, so code changes reuse this layer. The optional native tfjs-node binding
# is skipped (the server falls back to the wasm backend) and no install scripts run.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts && npm cache clean --force

# TypeScript runs through tsx (a runtime dependency): no build step.
COPY bin ./bin
COPY lib ./lib
COPY stages ./stages
COPY params.yaml tsconfig.json ./

# Prediction logs go to /app/.lockstep/logs/<endpoint>/ (and to LOCKSTEP_LOG_URI when set).
RUN mkdir -p /app/.lockstep && chown node:node /app/.lockstep
USER node

EXPOSE 8080
CMD ["node", "bin/lockstep.mjs", "serve"]
