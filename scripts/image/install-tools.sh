#!/usr/bin/env bash
# Installs what `make image` needs: Debian's docker.io (daemon + client) and debootstrap.
# Not part of `make setup`: only the image targets need a container engine. Idempotent.
set -euo pipefail
have() { [ -x "$1" ]; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "image: need root to run: $*" >&2; return 1; fi; }
missing=()
# Debian's client, not a newer /usr/local/bin/docker that may come first on PATH.
have /usr/bin/docker && have /usr/sbin/dockerd || missing+=(docker.io)
have /usr/sbin/debootstrap || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "image: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
