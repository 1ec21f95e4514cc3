#!/usr/bin/env bash
# Sets up what the tests need on a fresh machine, builds everything, runs every test project,
# and ends with one line: "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")"

# gcc builds the guests and the native differential-test runner (both freestanding: no 32-bit libc needed).
# zsh runs the zsh completion script's test (bash runs the bash one).
need_install=()
command -v make >/dev/null || need_install+=(make)
command -v gcc >/dev/null || need_install+=(gcc)
# the gdbserver tests drive the real gdb (Debian's gdb debugs i386 targets)
command -v gdb >/dev/null || need_install+=(gdb)
command -v zsh >/dev/null || need_install+=(zsh)   # the zsh completion script is tested in zsh
if [ ${#need_install[@]} -gt 0 ]; then
  echo "installing: ${need_install[*]}" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

if [ -f guests/Makefile ]; then
  make -s -C guests || { echo "guest build failed"; echo "0 passed, 1 failed"; exit 1; }
fi

# GRUB i386-xen images from Debian's packages (guests/README.md); offline this is said, not failed.
if bash guests/grub/fetch-and-build.sh >/dev/null 2>&1; then
  grub_line="GRUB i386-xen guests: tested ($(cat guests/build/grub/STATUS))"
else
  grub_line="GRUB i386-xen guests: NOT TESTED ($(cat guests/build/grub/STATUS 2>/dev/null || echo 'guests/grub/fetch-and-build.sh failed'))"
fi
echo "$grub_line"

dotnet build Replayvisor.sln -c Release -nologo -v q 2>&1 | tail -3
if [ "${PIPESTATUS[0]}" -ne 0 ]; then echo "0 passed, 1 failed"; exit 1; fi

log=$(mktemp)
dotnet test Replayvisor.sln -c Release --no-build -nologo 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

passed=0 failed=0 skipped=0
while read -r f p s; do
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done < <(sed -nE 's/.*Failed: +([0-9]+), Passed: +([0-9]+), Skipped: +([0-9]+).*/\1 \2 \3/p' "$log")
rm -f "$log"
echo "$grub_line"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
