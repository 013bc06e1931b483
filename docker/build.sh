#!/bin/sh
# The build stage's project work (Dockerfile: `RUN docker/build.sh`), in a script so that the
# no-Docker check (test/deploy/no-docker-build.test.ts) runs exactly what an image build runs.
#
# 1. Production dependencies from the lockfile. tools/tfjs-native's preinstall provisions native
#    TensorFlow (the pinned tensorflow-cpu wheel through pip, cached; or tfjs-node's own download
#    with DENSENET_TF_PROVISION=upstream) and compiles the tfjs-node binding against it: this is
#    the step that needs the build stage's g++, make and python3-pip.
# 2. Trim what only the compile needed, and onnxruntime-node's libraries for other platforms: TensorFlow's C++ headers (about 290 MB) and the libraries'
#    static symbol tables (about 220 MB; the dynamic symbols the binding links against stay).
set -eu

# The official Node images carry Node's headers; compiling against them spares node-gyp a download
# from nodejs.org. (Elsewhere, npm's own nodedir setting, or that download, applies.)
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/local/include/node/node.h ]; then
  npm_config_nodedir=/usr/local
  export npm_config_nodedir
fi

npm ci --omit=dev --no-audit --no-fund

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
