#!/usr/bin/env bash
# Re-records the golden traces from the guests of guests/. CI replays every traces/*.rvt and
# fails on any divergence, so re-record only after a deliberate change of guest-visible behaviour
# (a guest, the CPU, the Xen model or the trace format), and say so in the commit message.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -C guests
dotnet build src/Cli -c Release -nologo -v q >/dev/null
rv() { dotnet src/Cli/bin/Release/net10.0/replayvisor.dll "$@"; }

# name, kernel, extra record options; console input comes from the last argument when it is "<<text".
# WANT_EXIT (default 0) is the exit code the recording must end with (README's table).
record() {
  local name=$1 kernel=$2; shift 2
  local input="" rc=0
  if [ $# -gt 0 ] && [ "${!#:0:2}" = "<<" ]; then input=${!#:2}; set -- "${@:1:$(($#-1))}"; fi
  printf '%b' "$input" | rv record "guests/build/$kernel" -o "traces/$name.rvt" --memory 16 --checkpoint-interval 5000000 "$@" >/dev/null || rc=$?
  if [ "$rc" -ne "${WANT_EXIT:-0}" ]; then echo "record.sh: $name exited $rc, expected ${WANT_EXIT:-0}" >&2; exit 1; fi
  printf '%-22s %8s bytes\n' "$name.rvt" "$(stat -c %s "traces/$name.rvt")"
}

record pagetables          pagetables.elf
record pagetables-pae      pagetables-pae.elf
record failsafe            failsafe.elf
record failsafe-pae        failsafe-pae.elf
record events              events-pae.elf
record multicall           multicall.elf
record traps-pae           traps-pae.elf
record sched-chaos         sched-pae.elf --chaos 1
record sched-host          sched.elf --clock host
record sched-host-chaos    sched-pae.elf --clock host --chaos 2
record echo                echo-pae.elf "<<hello, golden trace\nsecond line\nquit\n"
record hello               hello.elf
record segments            segments-pae.elf
WANT_EXIT=3 record crash   crash.elf          # the guest fails on purpose and crashes itself
WANT_EXIT=7 record fpu     fpu.elf            # stops at the first x87 instruction (not implemented)

# Format 4: events.rvt with a keyframe every 32768 instructions (`index` copies its events unchanged).
mkdir -p traces/v4
rv index traces/events.rvt --interval 32768 -o traces/v4/events-indexed.rvt 2>/dev/null
printf '%-22s %8s bytes\n' "v4/events-indexed.rvt" "$(stat -c %s traces/v4/events-indexed.rvt)"
