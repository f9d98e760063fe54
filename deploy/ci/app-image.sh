#!/usr/bin/env bash
# The images the compose and Swarm tests run, made without a registry: the stand-in base
# images (stand-in-images.sh, from Debian's packages) and `session-vs-token:latest`, which
# holds the three binaries compiled here (Dockerfile.prebuilt), so the tests run the code of
# this checkout. PROFILE=debug reuses the test build; the default is release.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE=${PROFILE:-release}

bash deploy/ci/stand-in-images.sh
flag=(); [ "$PROFILE" = release ] && flag=(--release)
cargo build -q "${flag[@]}" -p session-server -p token-server -p loadtest
bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT
cp "target/$PROFILE/session-server" "target/$PROFILE/token-server" "target/$PROFILE/loadtest" "$bins/"
# --force-rm: a build that fails leaves no intermediate container behind.
docker build -q --force-rm -f deploy/ci/Dockerfile.prebuilt -t session-vs-token:latest "$bins" >/dev/null
