#!/usr/bin/env bash
# Makes the offline stand-in for Home Assistant's base image: a Debian bookworm rootfs from
# debootstrap, imported as $KIWI_BASE_IMAGE (default local/debian:bookworm). No registry is needed.
# Runs inside scripts/image/with-dockerd.sh; does nothing when the image is already there.
set -euo pipefail
image="${KIWI_BASE_IMAGE:-local/debian:bookworm}"
if "$DOCKER" image inspect "$image" >/dev/null 2>&1; then exit 0; fi
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
rootfs="$(mktemp -d "${TMPDIR:-/tmp}/kiwi-rootfs.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT
echo "image: debootstrap bookworm from $mirror"
/usr/sbin/debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
  || { tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# The same apt sources the HA base has: bookworm, its updates and security.
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | "$DOCKER" import - "$image" >/dev/null
echo "image: base $image imported"
