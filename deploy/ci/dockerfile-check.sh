#!/usr/bin/env bash
# The Dockerfile itself, both stages, on a machine that cannot pull rust:1-slim-bookworm:
# a stand-in made from deploy/ci/stand-in-images.sh's debian:bookworm-slim, Debian's gcc and
# this machine's own stable Rust toolchain, then `docker build .` unchanged and a look at the
# image (non-root user, the three programs, a server answering /healthz).
# Not part of .ci/run: the release build inside takes 10 to 20 minutes on 2 CPUs.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/ci/stand-in-images.sh
toolchain=$(rustc --print sysroot)
ctx=$(mktemp -d)
cid=""
trap 'rm -rf "$ctx"; [ -z "$cid" ] || docker rm -f "$cid" >/dev/null' EXIT
mkdir "$ctx/toolchain" && cp -a "$(readlink -f "$toolchain")/." "$ctx/toolchain/"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
ENV PATH=/usr/local/rust/bin:$PATH
LABEL svt.stand-in=host-toolchain
DOCKERFILE
echo "dockerfile check: stand-in rust:1-slim-bookworm ($(rustc --version))"
docker build -q -t rust:1-slim-bookworm "$ctx" >/dev/null
echo "dockerfile check: docker build . (the release build takes a while)"
start=$(date +%s)
docker build -t session-vs-token:dockerfile-check .
echo "dockerfile check: built in $(($(date +%s) - start)) s, $(docker image inspect -f '{{.Size}}' session-vs-token:dockerfile-check) bytes"
[ "$(docker run --rm session-vs-token:dockerfile-check id -u)" != 0 ] || { echo "dockerfile check: FAILED: runs as root"; exit 1; }
docker run --rm session-vs-token:dockerfile-check sh -c 'command -v session-server token-server loadtest curl' >/dev/null
cid=$(docker run -d -e COOKIE_SECURE=false session-vs-token:dockerfile-check session-server)
for _ in $(seq 50); do
  docker exec "$cid" curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && { echo "dockerfile check: passed"; exit 0; }
  sleep 0.2
done
docker logs "$cid"; echo "dockerfile check: FAILED: session-server never answered /healthz"; exit 1
