#!/usr/bin/env bash
# Builds the add-on image from this checkout with the offline base (scripts/image/base.sh).
# Runs inside scripts/image/with-dockerd.sh (DOCKER, DOCKER_HOST). Prints the image's size and the
# build's time, and records them in .cache/image/build.json.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
arch="${BUILD_ARCH:-amd64}"
version="$(sed -n 's/^version: *//p' addon/config.yaml)"
image="${KIWI_IMAGE:-local/kiwi-addon:$version}"
base="${KIWI_BASE_IMAGE:-local/debian:bookworm}"
started=$(date +%s)
KIWI_BASE_IMAGE="$base" scripts/image/base.sh
bash scripts/image/context.sh
"$DOCKER" build --network host \
  --build-arg BUILD_FROM="$base" --build-arg BUILD_ARCH="$arch" --build-arg KIWI_VERSION="$version" \
  -t "$image" -f addon/Dockerfile addon
seconds=$(( $(date +%s) - started ))
size=$("$DOCKER" image inspect -f '{{.Size}}' "$image")
mkdir -p .cache/image
printf '{"image": "%s", "size_bytes": %s, "build_seconds": %s}\n' "$image" "$size" "$seconds" \
  > .cache/image/build.json
echo "image: $image is $((size / 1000000)) MB, built in ${seconds} s"
