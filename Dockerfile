# rclonesync container appliance.
#
#   docker build -t rclonesync .
#   docker run -d -v /srv/photos:/data -v rclonesync-state:/state \
#     -e SYNC_PATH2=myremote:photos rclonesync            # daemon (default)
#   docker run --rm ... rclonesync run                    # one cycle
#
# Both base images are build arguments so that mirrors (or local stand-ins)
# can be used:  --build-arg NODE_IMAGE=... --build-arg RCLONE_IMAGE=...
# The rclone image only has to provide a Linux rclone binary at
# /usr/local/bin/rclone (the official one is static, so it runs on Debian).
ARG NODE_IMAGE=node:24-bookworm-slim
ARG RCLONE_IMAGE=rclone/rclone:1.75.1

FROM ${RCLONE_IMAGE} AS rclone

# tini (signal forwarding + zombie reaping when running as PID 1) and the CA
# bundle. The official node *-slim images purge ca-certificates, and rclone
# (Go) needs /etc/ssl/certs/ca-certificates.crt for every HTTPS backend.
# Taken from Debian packages in a throw-away stage so that the final image
# gets only the two files, no apt lists and no openssl.
FROM ${NODE_IMAGE} AS os-extras
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && test -s /etc/ssl/certs/ca-certificates.crt \
 && /usr/bin/tini --version

# Production dependencies only, from the lock file. The npm cache stays in
# this stage.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/.package-lock.json /root/.npm

# src/ as plain JavaScript (scripts/build.ts, Node's own type stripper): started from .ts, Node
# would load its stripper on every run, and a run would start slower and take more memory.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json ./
COPY scripts/build.ts ./scripts/
COPY src ./src
RUN node --disable-warning=ExperimentalWarning scripts/build.ts

FROM ${NODE_IMAGE}

ARG VERSION=0.1.0
ARG IMAGE_SOURCE=https://github.com/OWNER/rclonesync
ARG REVISION=unknown
LABEL org.opencontainers.image.title="rclonesync" \
      org.opencontainers.image.description="Safe bidirectional sync of any two rclone paths (local folder <-> cloud/NAS), as a scheduled container appliance" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${IMAGE_SOURCE}" \
      org.opencontainers.image.licenses="MIT"

COPY --from=rclone /usr/local/bin/rclone /usr/local/bin/rclone
COPY --from=os-extras /usr/bin/tini /usr/bin/tini
COPY --from=os-extras /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist

# The CLI is /app/dist/cli.js (shebang "#!/usr/bin/env -S node <flags>").
# /data and /state belong to uid 1000 so that fresh named volumes are
# writable by the default user.
RUN chmod 0755 dist/cli.js \
 && ln -s /app/dist/cli.js /usr/local/bin/rclonesync \
 && mkdir -p /data /state \
 && chown 1000:1000 /data /state \
 && rclone version >/dev/null

# HOME and the caches live in /tmp, so any --user uid:gid works without a
# home directory, and a read-only root filesystem only needs a tmpfs on /tmp.
# RCLONE_CONFIG is in /state because OAuth backends rewrite their tokens.
ENV NODE_ENV=production \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    NODE_COMPILE_CACHE=/tmp/.cache/node-compile-cache \
    RCLONE_CONFIG=/state/rclone.conf \
    SYNC_PATH1=/data \
    SYNC_STATE_DIR=/state

VOLUME ["/data", "/state"]

USER 1000:1000

# "health" is cheap (reads the state directory) and exits 0/1.
HEALTHCHECK --interval=1m --timeout=20s --start-period=2m --retries=3 \
  CMD ["rclonesync", "health"]

# tini is PID 1: it forwards SIGTERM/SIGINT to Node (which stops rclone and
# exits cleanly), reaps orphaned helper processes and passes the exit code
# through. -s keeps reaping (and silences tini's warning) when an outer init
# is PID 1 instead, e.g. `docker run --init` or compose `init: true`.
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "rclonesync"]
CMD ["daemon"]
