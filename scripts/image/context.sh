#!/usr/bin/env bash
# Stages the add-on's build context in addon/build/ (git-ignored): the kiwi-voice wheel built
# from this checkout, the runtime lock, and the host's extra CA certificates (used by the
# Dockerfile's build stage only). Both `make image` and the CI workflow build from it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
uv="${UV:-$root/.tools/bin/uv}"
out="$root/addon/build"
rm -rf "$out"
mkdir -p "$out/ca"
"$uv" build -q --wheel --out-dir "$out" "$root/wyoming_services"
cp "$root/requirements/image.lock" "$out/image.lock"
# Debian's place for locally added authorities; update-ca-certificates reads *.crt there.
for cert in /usr/local/share/ca-certificates/*.crt; do
  [ -e "$cert" ] && cp "$cert" "$out/ca/"
done
ls "$out"/kiwi_voice-*.whl >/dev/null
