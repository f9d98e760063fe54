#!/usr/bin/env bash
# Builds, without any container registry, stand-ins for the public images that
# docker-compose.yml and Dockerfile name, from Debian's packages:
#   debian:bookworm-slim   a debootstrap'd Debian 12 (minbase + ca-certificates, curl, libssl3)
#   redis:7.4-bookworm     that + Debian's redis-server (7.0), running as user redis
#   nginx:1.27-bookworm    that + Debian's nginx (1.22), `nginx -g 'daemon off;'`
# Only the base images are substituted: the compose file, nginx config and application
# binaries run unchanged. The root file systems are cached (tarballs under $CACHE) and an
# image whose recipe has not changed is not rebuilt.
set -euo pipefail
CACHE=${SVT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/session-vs-token}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the images hold; change it (or RECIPE_VERSION) and they are rebuilt.
RECIPE_VERSION=1
BASE_PACKAGES=ca-certificates,curl,libssl3
recipe=$(echo "$RECIPE_VERSION bookworm minbase $BASE_PACKAGES redis-server nginx" | sha256sum | cut -c1-16)
mkdir -p "$CACHE"

have() { [ "$(docker image inspect -f '{{index .Config.Labels "svt.recipe"}}' "$1" 2>/dev/null)" = "$recipe" ]; }

# rootfs DIR [PACKAGE ...]: a Debian root file system with these packages, as $CACHE/DIR.tar.
rootfs() {
  local name=$1 tar="$CACHE/$1-$recipe.tar"; shift
  if [ -s "$tar" ]; then echo "$tar"; return; fi
  local dir; dir=$(mktemp -d "$CACHE/$name.XXXXXX")
  echo "stand-ins: debootstrap $name ..." >&2
  if [ -s "$CACHE/base-$recipe.tar" ]; then
    tar -C "$dir" -xf "$CACHE/base-$recipe.tar"
  else
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$dir" "$MIRROR" >&2
  fi
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
  rm -rf "$dir"
  mv "$tar.part" "$tar"
  echo "$tar"
}

# image TAG TARBALL [--change ...]
image() {
  local tag=$1 tar=$2; shift 2
  echo "stand-ins: $tag" >&2
  docker import "$@" --change "LABEL svt.recipe=$recipe" --change "LABEL svt.stand-in=debian-packages" \
    "$tar" "$tag" >/dev/null
}

have debian:bookworm-slim || image debian:bookworm-slim "$(rootfs base)" --change 'CMD ["bash"]'
have redis:7.4-bookworm || image redis:7.4-bookworm "$(rootfs redis redis-server)" \
  --change 'USER redis' --change 'WORKDIR /tmp' --change 'EXPOSE 6379' --change 'CMD ["redis-server"]'
have nginx:1.27-bookworm || image nginx:1.27-bookworm "$(rootfs nginx nginx)" \
  --change 'EXPOSE 80' --change 'CMD ["nginx", "-g", "daemon off;"]'
# Old recipes' tarballs are dead weight.
find "$CACHE" -maxdepth 1 -name '*.tar' ! -name "*-$recipe.tar" -delete
for tag in debian:bookworm-slim redis:7.4-bookworm nginx:1.27-bookworm; do
  echo "stand-ins: $tag $(docker image inspect -f '{{.Size}}' "$tag") bytes"
done
