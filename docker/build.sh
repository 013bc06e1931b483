#!/bin/sh
# The build stage's second step (Dockerfile: `RUN docker/build.sh`, after docker/install-deps.sh
# and the sources), in a script so that the no-Docker check (test/deploy/no-docker-build.test.ts)
# runs exactly what an image build runs.
#
# 1. Compile src/ to dist/ (`npm run build`: tsc -p tsconfig.build.json). The image runs
#    `node dist/main.js`; neither the sources nor a TypeScript runner go into it.
# 2. Remove the dev dependencies (the compiler, tsx, the test tools): the runtime stage copies
#    this node_modules as it is.
# 3. Trim what only the compile needed, and onnxruntime-node's libraries for other platforms:
#    TensorFlow's C++ headers (about 290 MB) and the libraries' static symbol tables (about
#    220 MB; the dynamic symbols the binding links against stay).
set -eu

npm run build
npm prune --omit=dev --no-audit --no-fund

tfjs=node_modules/@tensorflow/tfjs-node
rm -rf "$tfjs/deps/include" "$tfjs"/build-tmp-napi-v*
# onnxruntime-node ships prebuilt libraries for every OS and CPU; keep this platform's only.
ort=node_modules/onnxruntime-node/bin/napi-v6
here="$(node -p 'process.platform + "/" + process.arch')"
for dir in "$ort"/*/*; do
  case "$dir" in "$ort/$here") ;; *) rm -rf "$dir" ;; esac
done

for lib in "$tfjs"/deps/lib/*.so.2; do
  if [ ! -f "$lib" ] || [ -L "$lib" ]; then continue; fi
  # Write a new file and rename it: the library may be a hard link into the provisioning cache,
  # which must stay as it is.
  strip --strip-unneeded -o "$lib.stripped" "$lib"
  mv -f "$lib.stripped" "$lib"
done
