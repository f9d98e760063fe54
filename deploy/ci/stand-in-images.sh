#!/usr/bin/env bash
# Builds, without any container registry, stand-ins for the public images that
# docker-compose.yml and Dockerfile name, from Debian's packages:
#   debian:bookworm-slim   a debootstrap'd Debian 12 (minbase + ca-certificates, curl, libssl3)
#   redis:7.4-bookworm     that + Debian's redis-server (7.0), running as user redis
#   nginx:1.27-bookworm    that + Debian's nginx (1.22), `nginx -g 'daemon off;'`
# Only the base images are substituted: the compose file, nginx config and application
# binaries run unchanged. The root file systems are cached (tarballs under $CACHE) and an
# image whose recipe has not changed is not rebuilt.
#
# Nothing broken is kept: a tool that is missing is named before anything is made; a root
# file system is cached only once it holds a shell (an empty one, from a debootstrap that
# failed, is never written); a cached tarball or an image without a shell is made again.
set -euo pipefail
# A failure inside $(...) stops the script too (bash runs it in a subshell).
shopt -s inherit_errexit
CACHE=${SVT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/session-vs-token}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the images hold; change it (or RECIPE_VERSION) and they are rebuilt. SVT_RECIPE_SALT
# gives a test recipes of its own, so that it never touches the real images.
RECIPE_VERSION=2
BASE_PACKAGES=ca-certificates,curl,libssl3
recipe=$(echo "$RECIPE_VERSION bookworm minbase $BASE_PACKAGES redis-server nginx ${SVT_RECIPE_SALT:-}" | sha256sum | cut -c1-16)
TAGS=(debian:bookworm-slim redis:7.4-bookworm nginx:1.27-bookworm)
[ -z "${SVT_STAND_IN_TAG_PREFIX:-}" ] || TAGS=("${TAGS[@]/#/$SVT_STAND_IN_TAG_PREFIX}")

fail() { echo "stand-ins: FAILED: $*" >&2; exit 1; }

# An image of this recipe whose shell runs.
have() {
  [ "$(docker image inspect -f '{{index .Config.Labels "svt.recipe"}}' "$1" 2>/dev/null)" = "$recipe" ] &&
    docker run --rm --network none --user 0 --entrypoint /bin/sh "$1" -c true >/dev/null 2>&1
}

# A root file system tarball with a shell in it (merged /usr: /bin is a link to usr/bin).
# Not `grep -q`: it would stop reading, tar would die of SIGPIPE, and pipefail fail the test.
tar_has_shell() { tar -tf "$1" 2>/dev/null | grep -xE '\./(usr/)?bin/sh' >/dev/null; }

missing=()
for i in "${!TAGS[@]}"; do have "${TAGS[$i]}" || missing+=("$i"); done
if ((${#missing[@]})); then
  need=(docker tar chroot mount umount sha256sum)
  # Only what is not cached yet has to be bootstrapped.
  for name in base redis nginx; do
    tar_has_shell "$CACHE/$name-$recipe.tar" || { need+=(debootstrap); break; }
  done
  absent=()
  for tool in "${need[@]}"; do command -v "$tool" >/dev/null 2>&1 || absent+=("$tool"); done
  ((${#absent[@]} == 0)) || fail "${absent[*]} not found on PATH: install it (Debian: apt-get install -y ${absent[*]}) and run again; nothing was made"
fi
mkdir -p "$CACHE"

# rootfs NAME [PACKAGE ...]: a Debian root file system with these packages, as $CACHE/NAME-<recipe>.tar.
rootfs() {
  local name=$1 tar="$CACHE/$1-$recipe.tar"; shift
  if tar_has_shell "$tar"; then echo "$tar"; return; fi
  [ ! -e "$tar" ] || { echo "stand-ins: $tar has no shell: making it again" >&2; rm -f "$tar"; }
  local dir; dir=$(mktemp -d "$CACHE/$name.XXXXXX")
  # This runs in $(...): whatever happens below, the half-made tree and tarball go with it.
  trap "$(printf 'umount %q 2>/dev/null || true; rm -rf %q %q' "$dir/proc" "$dir" "$tar.part")" EXIT
  echo "stand-ins: debootstrap $name ..." >&2
  if tar_has_shell "$CACHE/base-$recipe.tar"; then
    tar -C "$dir" -xf "$CACHE/base-$recipe.tar"
  else
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$dir" "$MIRROR" >&2 ||
      fail "debootstrap of $name failed (see above); nothing was cached"
  fi
  [ -x "$dir/bin/sh" ] || fail "the $name root file system has no /bin/sh (debootstrap made no usable system); nothing was cached"
  if (($#)); then
    # No service may start inside the chroot while packages install.
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"; chmod +x "$dir/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    mount -t proc proc "$dir/proc"
    chroot "$dir" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive chroot "$dir" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    umount "$dir/proc"
    rm -f "$dir/usr/sbin/policy-rc.d"
  fi
  chroot "$dir" apt-get clean
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin
  : >"$dir/etc/resolv.conf"
  tar -C "$dir" --numeric-owner -cf "$tar.part" .
  tar_has_shell "$tar.part" || fail "the $name tarball has no shell; nothing was cached"
  mv "$tar.part" "$tar"
  echo "$tar"
}

# image TAG TARBALL [--change ...]: imported, then checked (its shell runs) or removed.
image() {
  local tag=$1 tar=$2; shift 2
  echo "stand-ins: $tag" >&2
  docker import "$@" --change "LABEL svt.recipe=$recipe" --change "LABEL svt.stand-in=debian-packages" \
    "$tar" "$tag" >/dev/null
  have "$tag" || { docker image rm -f "$tag" >/dev/null 2>&1 || true; fail "$tag has no working shell; removed"; }
}

# Assignments first: a failure of $(rootfs ...) stops the script before anything is imported.
if ! have "${TAGS[0]}"; then
  tar=$(rootfs base)
  image "${TAGS[0]}" "$tar" --change 'CMD ["bash"]'
fi
if ! have "${TAGS[1]}"; then
  tar=$(rootfs redis redis-server)
  image "${TAGS[1]}" "$tar" \
    --change 'USER redis' --change 'WORKDIR /tmp' --change 'EXPOSE 6379' --change 'CMD ["redis-server"]'
fi
if ! have "${TAGS[2]}"; then
  tar=$(rootfs nginx nginx)
  image "${TAGS[2]}" "$tar" --change 'EXPOSE 80' --change 'CMD ["nginx", "-g", "daemon off;"]'
fi
# Old recipes' tarballs are dead weight.
find "$CACHE" -maxdepth 1 -name '*.tar' ! -name "*-$recipe.tar" -delete
for tag in "${TAGS[@]}"; do
  echo "stand-ins: $tag $(docker image inspect -f '{{.Size}}' "$tag") bytes"
done
