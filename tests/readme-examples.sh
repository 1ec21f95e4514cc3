#!/usr/bin/env bash
# Runs every command of README.md's ```sh blocks exactly as written, in order, from the repository
# root, each in a new shell that has read ~/.bashrc (as a terminal opened after the install would),
# with HOME a scratch directory: the installs, ~/.bashrc, ~/tools and ~/.local/bin land there.
# A line that exits non-zero fails the check. Two lines need a partner to finish:
#   `replayvisor debug T`      reads its commands from stdin: it gets "continue" and end of input;
#   `replayvisor gdbserver T`  waits for gdb: the gdb command its comment gives ("then: gdb …") is
#                              run in batch mode, and the server must exit 0 when gdb is done.
#   ./readme-examples.sh [--skip LINE]...   (e.g. --skip ./test.sh when the suite has just run)
# Prints one line per command and ends with "N commands ran as written" or the first failure.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
skip=()
while [ $# -gt 0 ]; do
  case "$1" in
    --skip) skip+=("${2:?--skip needs a command line}"); shift 2 ;;
    *) echo "readme-examples.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"; rm -f "$repo/sched.rvt"' EXIT
# The packages already restored stay usable (offline); dotnet's first-run text stays quiet.
export NUGET_PACKAGES=${NUGET_PACKAGES:-$HOME/.nuget/packages}
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export HOME=$scratch/home
mkdir -p "$HOME"
touch "$HOME/.zshrc"   # install.sh adds the PATH line to ~/.zshrc when one exists

# The command lines of the ```sh blocks, in order.
mapfile -t lines < <(awk '/^```sh$/ { on = 1; next } /^```/ { on = 0 } on && NF && $1 !~ /^#/' README.md)
[ ${#lines[@]} -gt 0 ] || { echo "readme-examples.sh: no \`\`\`sh blocks in README.md" >&2; exit 1; }

in_new_shell() { bash -c 'source ~/.bashrc; eval "$1"' _ "$1"; }

n=0
for line in "${lines[@]}"; do
  cmd=${line%%  #*}; cmd=${cmd%"${cmd##*[![:space:]]}"}   # the command without its trailing comment
  for s in "${skip[@]}"; do [ "$cmd" = "$s" ] && { echo "skipped: $cmd"; continue 2; }; done
  echo "\$ $line"
  log=$scratch/log; : >"$log"
  case "$cmd" in
    "replayvisor debug "*)
      printf 'continue\n' | in_new_shell "$line" >"$log" 2>&1; rc=$? ;;
    "replayvisor gdbserver "*)
      in_new_shell "$line" >"$scratch/server" 2>&1 &
      server=$!
      gdbcmd=${line#*then: }
      [ "$gdbcmd" != "$line" ] || { echo "FAILED: the gdbserver line names no gdb command"; exit 1; }
      for _ in $(seq 300); do grep -q 'listening on' "$scratch/server" && break; sleep 0.2; done
      eval "$gdbcmd -batch -ex 'stepi' -ex 'info registers eip'" >>"$log" 2>&1; rc=$?
      grep -q '^eip ' "$log" || rc=1
      wait "$server" || rc=$?
      cat "$scratch/server" >>"$log" ;;
    *)
      in_new_shell "$line" </dev/null >"$log" 2>&1; rc=$? ;;
  esac
  if [ "$rc" -ne 0 ]; then
    tail -20 "$log"
    echo "FAILED (exit $rc): $line"
    exit 1
  fi
  n=$((n + 1))
done
echo "$n commands ran as written"
