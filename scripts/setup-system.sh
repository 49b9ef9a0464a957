#!/usr/bin/env bash
# Installs the system packages Kiwi's environments and tests need.
# Idempotent: each step checks first and does nothing when its tools are already present.
# On Debian 12 (bookworm) without a usable python3.13, it adds the trixie suite pinned at
# priority 100 (so nothing else upgrades by surprise) and installs python3.13 from it.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

python313_ok() {
  # pytest-homeassistant-custom-component needs Python >= 3.13.2 with venv + ensurepip.
  local py
  py=$(command -v /usr/bin/python3.13 || true)
  [ -n "$py" ] || return 1
  "$py" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 13, 2))' 2>/dev/null
}

is_debian() { [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ]; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif have sudo; then sudo "$@"; else
  echo "setup-system: need root to run: $*" >&2; return 1; fi; }

if ! is_debian; then
  missing=()
  python313_ok || have python3.13 || missing+=("python3.13 (>= 3.13.2, with venv)")
  for tool in gcc espeak-ng sox text2wave; do have "$tool" || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-system: not Debian, so nothing is installed automatically. Missing: ${missing[*]}" >&2
    exit 1
  fi
  exit 0
fi

apt_updated=0
apt_update() { [ $apt_updated = 1 ] || { as_root apt-get update -qq; apt_updated=1; }; }

if ! python313_ok; then
  . /etc/os-release
  if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    echo "setup-system: installing python3.13 from Debian trixie (apt pin priority 100)"
    if [ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
      apt_update; as_root apt-get install -y -qq debian-archive-keyring
    fi
    as_root tee /etc/apt/sources.list.d/kiwi-trixie.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    as_root tee /etc/apt/preferences.d/kiwi-trixie >/dev/null <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    apt_updated=0; apt_update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie --no-install-recommends \
      python3.13 python3.13-venv python3.13-dev python3-pip-whl python3-setuptools-whl
  else
    apt_update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3.13 python3.13-venv python3.13-dev
  fi
fi

# gcc + libc6-dev: one HA pin (lru-dict) compiles. espeak-ng + sox: test speech.
# pocketsphinx-testdata: real human speech. chromium: browser tests.
# pulseaudio + pulseaudio-utils: the tests' own PulseAudio server and pactl/paplay/parecord
# (tests/support/pulse.py). libportaudio2 (what `sounddevice` loads) + libasound2-plugins (ALSA's
# `pulse` device, PortAudio's way into PulseAudio): the hub's host microphone and speaker.
# festival + festvox-*: recorded people's voices for the speaker-identification tests and the
# background cohort (tests/support/voices.py, scripts/build_speaker_cohort.py).
FESTIVAL_VOICES=/usr/share/festival/voices
for pkg_tool in gcc:gcc libc6-dev:/usr/include/stdio.h espeak-ng:espeak-ng sox:sox \
    pocketsphinx-testdata:/usr/share/pocketsphinx/test/data \
    chromium:chromium festival:text2wave \
    pulseaudio:pulseaudio pulseaudio-utils:pactl \
    libportaudio2:dpkg:libportaudio2 libasound2-plugins:dpkg:libasound2-plugins \
    festvox-kallpc16k:$FESTIVAL_VOICES/english/kal_diphone \
    festvox-kdlpc16k:$FESTIVAL_VOICES/english/ked_diphone \
    festvox-us-slt-hts:$FESTIVAL_VOICES/us/cmu_us_slt_arctic_hts \
    festvox-ca-ona-hts:$FESTIVAL_VOICES/catalan/upc_ca_ona_hts \
    festvox-czech-dita:$FESTIVAL_VOICES/czech/czech_dita \
    festvox-czech-krb:$FESTIVAL_VOICES/czech/czech_krb \
    festvox-czech-machac:$FESTIVAL_VOICES/czech/czech_machac \
    festvox-czech-ph:$FESTIVAL_VOICES/czech/czech_ph \
    festvox-suopuhe-mv:$FESTIVAL_VOICES/finnish/hy_fi_mv_diphone \
    festvox-suopuhe-lj:$FESTIVAL_VOICES/finnish/suo_fi_lj_diphone \
    festvox-italp16k:$FESTIVAL_VOICES/italian/lp_diphone \
    festvox-itapc16k:$FESTIVAL_VOICES/italian/pc_diphone; do
  pkg=${pkg_tool%%:*}; probe=${pkg_tool#*:}
  if [[ $probe == dpkg:* ]]; then
    # A library has no tool to probe and its path depends on the architecture: ask dpkg.
    dpkg-query -W -f='${Status}' "${probe#dpkg:}" 2>/dev/null | grep -q 'ok installed' || need_apt+=("$pkg")
  elif [[ $probe == /* ]]; then [ -e "$probe" ] || need_apt+=("$pkg"); else have "$probe" || need_apt+=("$pkg"); fi
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup-system: installing ${need_apt[*]}"
  apt_update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
