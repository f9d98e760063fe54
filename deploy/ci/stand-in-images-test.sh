#!/usr/bin/env bash
# The test of stand-in-images.sh on a machine without debootstrap: it must say so and make
# nothing (no tarball, no image, no container), and must not take an empty cached tarball or
# an image without a shell (what a failed run used to leave) for a good one. Runs on its own
# recipe and tags (SVT_RECIPE_SALT, SVT_STAND_IN_TAG_PREFIX): the real stand-ins are untouched.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! docker info >/dev/null 2>&1; then
  echo "stand-in images test: SKIPPED: no Docker Engine answers (docker info failed)"
  exit 0
fi
fail() { echo "stand-in images test: FAILED: $*"; exit 1; }
tmp=$(mktemp -d)
prefix=svt-test-$$-
# Never fails (it runs on exit, where a failure would become the test's exit status).
cleanup() {
  docker images --format '{{.Repository}}:{{.Tag}}' | { grep "^$prefix" || true; } | xargs -r docker image rm -f >/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# A PATH with every command of this one but debootstrap.
mkdir "$tmp/bin"
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  for f in "$d"/*; do
    n=${f##*/}
    [ "$n" != debootstrap ] && [ -x "$f" ] && [ ! -e "$tmp/bin/$n" ] && ln -s "$f" "$tmp/bin/$n"
  done
done
PATH="$tmp/bin" command -v debootstrap >/dev/null && fail "debootstrap is still on the test's PATH"

run() {
  PATH="$tmp/bin" SVT_CACHE="$tmp/cache" SVT_RECIPE_SALT="test-$$" SVT_STAND_IN_TAG_PREFIX="$prefix" \
    bash deploy/ci/stand-in-images.sh >"$tmp/out" 2>&1
}
containers_before=$(docker ps -aq | sort)
expect_clear_error() {
  if run; then cat "$tmp/out"; fail "$1: it succeeded without debootstrap"; fi
  grep -q 'debootstrap not found on PATH' "$tmp/out" || { cat "$tmp/out"; fail "$1: the error does not name debootstrap"; }
  [ -z "$(find "$tmp/cache" -name '*.tar*' -size +20k 2>/dev/null)" ] || fail "$1: a tarball was cached"
  [ "$(docker ps -aq | sort)" = "$containers_before" ] || fail "$1: a container was left behind"
}

# 1. Nothing cached, no image: a clear error, nothing made.
expect_clear_error "a fresh machine"
[ ! -e "$tmp/cache" ] || fail "the cache folder was made"
[ -z "$(docker images -q "$prefix*")" ] || fail "an image was made"
echo "stand-in images test: without debootstrap: '$(tail -n 1 "$tmp/out")', no tarball, no image"

# 2. What a failed run used to leave: empty tarballs and an image without a shell, of this
# very recipe. Neither is taken for a stand-in: the script wants to make them again.
recipe=$(echo "2 bookworm minbase ca-certificates,curl,libssl3 redis-server nginx test-$$" | sha256sum | cut -c1-16)
grep -q "^RECIPE_VERSION=2$" deploy/ci/stand-in-images.sh || fail "the test's recipe is out of date"
mkdir -p "$tmp/cache" "$tmp/empty"
for name in base redis nginx; do tar -C "$tmp/empty" -cf "$tmp/cache/$name-$recipe.tar" .; done
tar -C "$tmp/empty" -cf - . | docker import --change "LABEL svt.recipe=$recipe" - "${prefix}debian:bookworm-slim" >/dev/null
expect_clear_error "empty leftovers"
echo "stand-in images test: empty cached tarballs and a shell-less image are not reused"

# 3. A debootstrap that fails, and one that "succeeds" with an empty tree: a clear error, and
# nothing left in the cache (no tarball, no half-made tree).
rm -rf "$tmp/cache"
docker image rm -f "${prefix}debian:bookworm-slim" >/dev/null
for fake in 'echo "E: no network" >&2; exit 1' 'mkdir -p "$3"; exit 0'; do
  printf '#!/bin/sh
%s
' "$fake" >"$tmp/bin/debootstrap"; chmod +x "$tmp/bin/debootstrap"
  if run; then cat "$tmp/out"; fail "a broken debootstrap ($fake): it succeeded"; fi
  grep -qE 'debootstrap of base failed|has no /bin/sh' "$tmp/out" || { cat "$tmp/out"; fail "a broken debootstrap ($fake): no clear error"; }
  [ -z "$(find "$tmp/cache" -mindepth 1 2>/dev/null)" ] || { ls -la "$tmp/cache"; fail "a broken debootstrap ($fake): the cache kept $(ls "$tmp/cache")"; }
  [ "$(docker ps -aq | sort)" = "$containers_before" ] || fail "a container was left behind"
  [ -z "$(docker images -q "$prefix*")" ] || fail "an image was made"
done
echo "stand-in images test: a failing or empty debootstrap leaves the cache empty"
echo "stand-in images test: passed"
