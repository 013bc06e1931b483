#!/bin/sh
# The build stage's first step (Dockerfile: `RUN docker/install-deps.sh`), in a script so that the
# no-Docker check (test/deploy/no-docker-build.test.ts) runs exactly what an image build runs. It
# comes before the sources are copied in, so Docker rebuilds this layer only when the lockfile,
# .npmrc or tools/tfjs-native change; docker/build.sh then compiles and prunes.
#
# Every dependency from the lockfile, dev ones included: the compiler (typescript) is one, and
# docker/build.sh removes them all once it has compiled. tools/tfjs-native's preinstall provisions
# native TensorFlow (the pinned tensorflow-cpu wheel through pip, cached; or tfjs-node's own
# download with DENSENET_TF_PROVISION=upstream) and compiles the tfjs-node binding against it:
# this is the step that needs the build stage's g++, make and python3-pip.
#
# `npm ci` would also run the project's own `prepare` (the build) at its end, and the sources are
# not here yet: this stage's copy of package.json goes without it (the runtime stage copies
# package.json from the build context, unchanged).
set -eu

# The official Node images carry Node's headers; compiling against them spares node-gyp a download
# from nodejs.org. (Elsewhere, npm's own nodedir setting, or that download, applies.)
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/local/include/node/node.h ]; then
  npm_config_nodedir=/usr/local
  export npm_config_nodedir
fi

npm pkg delete scripts.prepare
npm ci --no-audit --no-fund
