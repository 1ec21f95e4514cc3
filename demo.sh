#!/usr/bin/env bash
# The main job: builds everything on a fresh machine, installs the `replayvisor` command (install.sh),
# records a guest kernel's run into a trace, replays the trace bit-exactly, and shows what it holds.
set -euo pipefail
cd "$(dirname "$0")"

command -v gcc >/dev/null && command -v make >/dev/null || {
  echo "installing gcc and make" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc make >/dev/null
}

make -s -C guests
./install.sh
case ":$PATH:" in *":$HOME/.dotnet/tools:"*) ;; *) export PATH="$PATH:$HOME/.dotnet/tools" ;; esac
rv() { echo "\$ replayvisor $*" >&2; replayvisor "$@"; }

guest=${1:-guests/build/sched-pae.elf}
mkdir -p artifacts
echo "== record $guest (virtual clock) =="
rv record "$guest" -o artifacts/demo.rvt --stats
echo
echo "== replay artifacts/demo.rvt =="
rv replay artifacts/demo.rvt
echo
echo "== info artifacts/demo.rvt =="
rv info artifacts/demo.rvt
