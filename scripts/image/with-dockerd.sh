#!/usr/bin/env bash
# Runs a command with a private Docker daemon, then stops that daemon by its PID.
#
#   scripts/image/with-dockerd.sh COMMAND [ARGS...]
#
# The daemon has its own data root, exec root and socket under $KIWI_DOCKER_DIR (default
# .cache/docker), so it never touches another daemon on the machine, and it is started with
# --iptables=false --ip-forward=false --bridge=none: a plain dockerd adds iptables chains and a
# docker0 bridge and turns IP forwarding on, and does not undo them. Builds and containers use
# --network host instead, so the host's network is left exactly as it was. COMMAND sees
# DOCKER_HOST and DOCKER (Debian's client: a newer /usr/local/bin/docker may come first on PATH).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$(realpath -m "${KIWI_DOCKER_DIR:-$root/.cache/docker}")"
# The exec root holds a unix socket per container: keep its path short (108-byte limit).
exec_root="/run/kiwi-docker-$(printf %s "$dir" | sha256sum | cut -c1-12)"
sock="$dir/docker.sock"
mkdir -p "$dir/data" "$exec_root"
log="$dir/dockerd.log"
# One daemon per data root: a second would fight the first over its socket and its files.
if [ -s "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
  echo "image: a dockerd (PID $(cat "$dir/dockerd.pid")) already uses $dir; wait for it" >&2
  exit 1
fi

/usr/sbin/dockerd \
  --data-root "$dir/data" \
  --exec-root "$exec_root" \
  --pidfile "$dir/dockerd.pid" \
  -H "unix://$sock" \
  --iptables=false --ip6tables=false --ip-forward=false --bridge=none \
  --storage-driver overlay2 \
  >"$log" 2>&1 &
pid=$!

stop() {
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done  # waits for dockerd's own shutdown
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # dockerd bind-mounts the host's network namespace at netns/default and leaves it mounted.
  if mountpoint -q "$exec_root/netns/default" 2>/dev/null; then umount "$exec_root/netns/default"; fi
  # The daemon's runtime state: nothing in it outlives the daemon. Not when a mount stays.
  if ! grep -q " $exec_root/" /proc/self/mounts; then rm -rf "$exec_root"; fi
}
trap stop EXIT
trap 'exit 130' INT TERM

export DOCKER_HOST="unix://$sock"
export DOCKER=/usr/bin/docker
for _ in $(seq 1 300); do  # polls until the daemon answers (about 1 s), up to 60 s
  if "$DOCKER" version >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "dockerd exited; see $log" >&2; tail -20 "$log" >&2; exit 1; fi
  sleep 0.2
done
"$DOCKER" version >/dev/null || { echo "dockerd did not answer; see $log" >&2; exit 1; }
"$@"
