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
trap 'rm -rf "$ctx"' EXIT
mkdir "$ctx/toolchain" && cp -a "$(readlink -f "$toolchain")/." "$ctx/toolchain/"
# Certificate authorities this machine added (e.g. an egress proxy's), so that cargo inside
# the build reaches crates.io as the host does; a normal network needs none.
mkdir "$ctx/ca"
cp /usr/local/share/ca-certificates/*.crt "$ctx/ca/" 2>/dev/null || true
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
COPY toolchain /usr/local/rust
ENV PATH=/usr/local/rust/bin:$PATH
LABEL svt.stand-in=host-toolchain
DOCKERFILE
echo "dockerfile check: stand-in rust:1-slim-bookworm ($(rustc --version))"
docker build -q --force-rm -t rust:1-slim-bookworm "$ctx" >/dev/null
echo "dockerfile check: docker build . (the release build takes a while)"
start=$(date +%s)
docker build --force-rm -t session-vs-token:dockerfile-check .
echo "dockerfile check: built in $(($(date +%s) - start)) s, $(docker image inspect -f '{{.Size}}' session-vs-token:dockerfile-check) bytes"
[ "$(docker run --rm session-vs-token:dockerfile-check id -u)" != 0 ] || { echo "dockerfile check: FAILED: runs as root"; exit 1; }
docker run --rm session-vs-token:dockerfile-check sh -c 'command -v session-server token-server loadtest curl' >/dev/null
# A server from the image, with a Redis from the stand-in, on a network of its own.
net=svt-dockerfile-check-$$
docker network create "$net" >/dev/null
rid=$(docker run -d --network "$net" --network-alias redis redis:7.4-bookworm redis-server --save '' --protected-mode no)
cid=$(docker run -d --network "$net" -e REDIS_URL=redis://redis:6379 -e COOKIE_SECURE=false \
  session-vs-token:dockerfile-check session-server)
trap 'rm -rf "$ctx"; docker rm -f "$cid" "$rid" >/dev/null; docker network rm "$net" >/dev/null' EXIT
for _ in $(seq 50); do
  if docker exec "$cid" curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1; then
    echo "dockerfile check: passed (session-server from the image is ready, as user $(docker exec "$cid" id -un))"
    exit 0
  fi
  sleep 0.2
done
docker logs "$cid"; echo "dockerfile check: FAILED: session-server never answered /readyz"; exit 1
