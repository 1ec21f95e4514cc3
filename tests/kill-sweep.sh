#!/usr/bin/env bash
# Kill/interrupt sweep (docs/record-replay.md "Killed and interrupted recorders"): records guests,
# stops each recorder with a signal after a delay, replays the trace it left and counts the
# replay exit codes (12 for a killed recorder's prefix, 0 for a closed trace; never 10 or 70).
# Usage: tests/kill-sweep.sh KILL|TERM|INT [delay-seconds...]   (build first: dotnet build -c Release)
set -um  # job control: background recorders keep SIGINT (non-interactive shells ignore it in background jobs)
cd "$(dirname "$0")/.."
DLL=${RV_DLL:-src/Cli/bin/Release/net10.0/replayvisor.dll}
G=guests/build
SIG=$1; shift
delays=${*:-"0.05 0.2 0.4 0.6 0.8 1.0 1.2"}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
declare -A count
run_case() { # name, kernel, delay, record options...
  local name=$1 kernel=$2 d=$3; shift 3
  local t=$W/$name-$d.rvt
  # stdin: a line every 0.1 s (the echo guest echoes it; the others ignore it), kept open.
  ( for i in $(seq 1 40); do echo "line $i"; sleep 0.1; done ) | dotnet "$DLL" record "$G/$kernel" -o "$t" "$@" >/dev/null 2>&1 &
  local pid=$!
  # Count the delay from the moment the trace file holds its first bytes (start-up varies with load).
  for _ in $(seq 1 1000); do [ -s "$t" ] && break; sleep 0.01; done
  sleep "$d"
  kill -"$SIG" "$pid" 2>/dev/null
  wait 2>/dev/null
  local rrc
  dotnet "$DLL" replay "$t" --quiet >/dev/null 2>"$t.err"; rrc=$?
  count[$rrc]=$(( ${count[$rrc]:-0} + 1 ))
  printf '%-20s delay %-5s replay %3d  %s\n' "$name" "$d" "$rrc" "$(head -1 "$t.err" | cut -c1-150)"
}
for d in $delays; do
  run_case sched-host-chaos3 sched-pae.elf "$d" --clock host --chaos 3
  run_case sched-virtual sched-pae.elf "$d"
  run_case echo-host echo.elf "$d" --clock host
  run_case echo-virtual echo-pae.elf "$d"
done
echo "SIG$SIG: replay exit codes:"; for k in "${!count[@]}"; do echo "  exit $k: ${count[$k]}"; done
