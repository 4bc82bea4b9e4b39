# syntax=docker/dockerfile:1

# Node 24, the current LTS line (README: why). Pin the exact image by digest where you build, e.g.
#   docker build --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:<digest> .
# (no container registry is reachable from the machines this repository is developed on, so the digest
# is not written here).
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: all dependencies, compile the service (src/, ormconfig.ts) with SWC --------------------
# Only the service: dev-idp/ is neither copied nor compiled (production refuses to start it anyway), and
# the OpenAPI plugin's output is the committed src/metadata.ts, so no type-checking build is needed here.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY .swcrc ormconfig.ts ./
COPY src ./src
RUN npx swc src ormconfig.ts -d dist --config-file .swcrc --ignore "**/*.spec.ts" --quiet

# --- production dependencies only ------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 # TypeScript comes with @nestjs/swagger for its compile-time plugin only; nothing imports it at run time.
 # Type declarations, source maps and docs are not run either. What is left is about 51 MB (79 MB on disk).
 && rm -rf node_modules/typescript \
 && find node_modules -type f \( -name "*.d.ts" -o -name "*.d.mts" -o -name "*.d.cts" -o -name "*.map" \
      -o -name "*.md" \) -delete

# --- runtime ---------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/live').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# Node receives SIGTERM directly (exec form, no shell) and shuts down gracefully. The old-space cap is
# `npm run start:prod`'s (see README, Deployment): the live heap is about 50 MB, and without a cap V8 lets
# it grow to twice that and more between collections on a large host.
CMD ["node", "--enable-source-maps", "--max-old-space-size=192", "--max-semi-space-size=8", "dist/src/main.js"]
