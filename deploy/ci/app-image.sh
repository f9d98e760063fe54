#!/usr/bin/env bash
# The images the compose and Swarm tests run, made without a registry: the stand-in base
# images (stand-in-images.sh, from Debian's packages), `session-vs-token:latest`, which
# holds the three binaries compiled here (Dockerfile.prebuilt), so the tests run the code of
# this checkout, and `session-vs-token-lesson:latest` (that and Chromium and nginx, for the
# compare service). PROFILE=debug reuses the test build; the default is release.
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
docker build -q --force-rm -f deploy/ci/Dockerfile.prebuilt --target runtime -t session-vs-token:latest "$bins" >/dev/null
# The compare service's image (Chromium and nginx on top). Its package layer comes after the
# binaries, so a new build installs them again: about a minute here.
docker build -q --force-rm -f deploy/ci/Dockerfile.prebuilt --target lesson -t session-vs-token-lesson:latest "$bins" >/dev/null
