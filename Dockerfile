# densenet-serve: DenseNet image classification over HTTP (8080) and gRPC (8081) on native
# TensorFlow. docs/deployment.md has the details and the reasons.
#
#   docker build -t densenet-serve:0.1.0 .
#   docker run --rm --cpus 2 -p 8080:8080 -p 8081:8081 densenet-serve:0.1.0
#
# Stages: `build` has the C++ toolchain and pip; it installs the dependencies from the lockfile,
# which provisions native TensorFlow and compiles the tfjs-node binding, compiles the TypeScript
# sources to dist/, then removes the dev dependencies and trims what only the compiles needed.
# `runtime` is the slim base image with tini, those node_modules, dist/ and the default model; it
# runs `node dist/main.js` (what `npm start` runs) as an unprivileged user. No sources, no
# TypeScript runner.
#
# No Docker engine runs in CI. test/deploy/no-docker-build.test.ts parses this file and executes
# it in a clean directory: the build context (git's files less .dockerignore), every COPY, ENV,
# the project's RUN steps, ENTRYPOINT + CMD, HEALTHCHECK and SIGTERM. So project work in a RUN
# goes into a docker/*.sh script; the other RUN steps may only install Debian packages.
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

# node:20-bookworm-slim pinned by digest, so that a rebuild starts from the same bytes. This is the
# digest published for that tag as found in public projects' pins; it was not resolved against
# the registry from here (no registry access). Refresh it with
#   docker buildx imagetools inspect node:20-bookworm-slim
# and use the index digest (the "Digest:" line).
ARG NODE_IMAGE=node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0

FROM ${NODE_IMAGE} AS build
# Debian's versions are fixed by the pinned base image's release; pinning each package's version
# as well would break the build at every Debian point release.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates g++ make python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# `--build-arg DENSENET_TF_PROVISION=upstream`: tfjs-node downloads libtensorflow itself (needs
# internet) instead of the pinned tensorflow-cpu wheel.
ARG DENSENET_TF_PROVISION
# A pip index that serves tensorflow-cpu==2.21.0 where PyPI is out of reach.
ARG PIP_INDEX_URL
COPY package.json package-lock.json .npmrc ./
COPY tools/tfjs-native/ tools/tfjs-native/
COPY docker/install-deps.sh docker/
# Dependencies before the sources: a change to src/ does not re-run the install. The npm cache and
# the provisioning cache (the 270 MB wheel, the built binding) outlive the build.
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=cache,target=/root/.cache/densenet-serve \
    docker/install-deps.sh
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY docker/build.sh docker/
RUN docker/build.sh

FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: it forwards SIGTERM to the server (which then drains) and reaps zombies, under any
# runtime; `docker run --init` would do the same, but Kubernetes has no such switch.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# package.json: its "type": "module" makes dist/*.js ES modules, and the server reads its version.
COPY package.json ./
COPY proto ./proto
COPY models ./models
COPY docker/entrypoint.sh docker/healthcheck.mjs docker/
# The base image's `node` user, by number so that Kubernetes' runAsNonRoot can verify it. The
# files above stay root's: the server cannot change its own code or models.
USER 1000:1000
# Every setting is an environment variable (src/config.ts lists them with their defaults);
# docker/entrypoint.sh sizes TF_INTRA_OP_THREADS to the CPU quota unless it is set.
EXPOSE 8080 8081
# Readiness, every 2 s while the models load and warm up (up to MODEL_LOAD_TIMEOUT_MS), then every
# 10 s. --start-interval needs Docker 25 or later.
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s --start-interval=2s --retries=3 \
    CMD ["node", "/app/docker/healthcheck.mjs"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
CMD ["node", "dist/main.js"]
