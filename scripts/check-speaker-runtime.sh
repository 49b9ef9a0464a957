#!/usr/bin/env bash
# Proves kiwi-speaker runs from the add-on's runtime dependencies alone: no torch, librosa,
# numba, llvmlite or resemblyzer.
#
#   scripts/check-speaker-runtime.sh [VENV]     (default: a temporary folder, removed after)
#
# 1. a fresh venv gets `kiwi-voice` (wyoming_services/) and its declared dependencies only, at
#    the versions of requirements/addon.lock, from uv's cache (offline);
# 2. none of the five is installed there;
# 3. kiwi-speaker from that venv enrols espeak-ng's en-us+m3 with three sentences and names it
#    from a fourth (the client is the add-on test env's Python; the weights are resemblyzer's
#    pretrained.pt, read as a data file).
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
venv=${1:-$(mktemp -d /tmp/kiwi-speaker-runtime.XXXXXX)}
[ $# -ge 1 ] || trap 'rm -rf "$venv"' EXIT
uv=.tools/bin/uv
links=()
[ -d "${PIP_FIND_LINKS:-/opt/wheels}" ] && links=(--find-links "${PIP_FIND_LINKS:-/opt/wheels}")

"$uv" venv -q --python "$(command -v python3.11 || command -v python3)" "$venv"
"$uv" pip install -q --offline "${links[@]}" -c requirements/addon.lock \
  --python "$venv/bin/python" ./wyoming_services
installed=$("$uv" pip list --python "$venv/bin/python" 2>/dev/null | awk 'NR>2 {print tolower($1)}')
for forbidden in torch librosa numba llvmlite resemblyzer; do
  if grep -qx "$forbidden" <<<"$installed"; then
    echo "FAIL: $forbidden is installed by the add-on's runtime dependencies" >&2
    exit 1
  fi
done
echo "runtime venv: $(wc -l <<<"$installed") packages, none of torch librosa numba llvmlite resemblyzer"

weights=$(.venv-addon/bin/python -c \
  'from kiwi_voice.speaker.encoder import bundled_weights; print(bundled_weights())')
port=$(.venv-addon/bin/python -c 'from tests.support.ports import free_port; print(free_port())')
work=$(mktemp -d /tmp/kiwi-speaker-runtime-data.XXXXXX)
"$venv/bin/kiwi-speaker" --uri "tcp://127.0.0.1:$port" --db "$work/speakers.db" \
  --weights "$weights" >"$work/kiwi-speaker.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; [ $# -ge 1 ] || rm -rf "$venv"' EXIT

.venv-addon/bin/python - "$port" "$pid" <<'PY'
import asyncio, sys, time
from tests.support.speaker_client import describe_when_loaded, enroll_clips, identify
from tests.support.voices import voice_clips, wav_samples

port, pid = int(sys.argv[1]), int(sys.argv[2])

async def main() -> None:
    for _ in range(300):
        try:
            program = await describe_when_loaded(port)
            break
        except OSError:
            await asyncio.sleep(0.1)
    assert not program["problems"], program["problems"]
    clips = voice_clips("espeak:en-us+m3")
    owner = await enroll_clips(port, clips.enrol, name="Owner")
    answer = await identify(port, wav_samples(clips.test[0]))
    assert answer["id"] == owner["id"], answer
    modules = open(f"/proc/{pid}/maps").read()
    for name in ("torch", "librosa", "numba", "llvmlite"):
        assert f"/{name}/" not in modules, f"{name} is loaded in kiwi-speaker"
    print(f"kiwi-speaker from the runtime venv named Owner (cosine {answer['confidence']})")

asyncio.run(main())
PY
