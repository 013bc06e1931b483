#!/bin/sh
# Installs the C load generators the overload bench drives the server with (bench/overload/):
# wrk (HTTP/1.1) and h2load (HTTP/2, from nghttp2-client), both from Debian. Run by
# bench/overload/cli.ts when either is missing; never needed by `npm test`.
#   sh bench/overload/install-generators.sh
set -eu

missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v h2load >/dev/null 2>&1 || missing="$missing nghttp2-client"
if [ -z "$missing" ]; then
  echo "wrk and h2load are installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing:$missing — no apt-get here: install wrk (HTTP/1.1) and h2load (nghttp2) with this system's package manager" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing:$missing — installing needs root: sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi

echo "installing$missing (apt-get)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$missing
command -v wrk >/dev/null 2>&1 && command -v h2load >/dev/null 2>&1
