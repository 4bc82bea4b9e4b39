# syntax=docker/dockerfile:1

# --- build: all dependencies, compile TypeScript with SWC ---------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY .swcrc tsconfig.json ormconfig.ts ./
COPY src ./src
COPY dev-idp ./dev-idp
RUN npm run build

# --- production dependencies only ------------------------------------------------------------------
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- runtime ---------------------------------------------------------------------------------------
FROM node:20-bookworm-slim
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
CMD ["node", "--max-old-space-size=192", "dist/src/main.js"]
