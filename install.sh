#!/usr/bin/env bash
# Installs the `replayvisor` command (README "Install"):
#   ./install.sh                    packs src/Cli as a .NET tool into artifacts/packages and installs
#                                   it globally from there (~/.dotnet/tools/replayvisor), replacing
#                                   an installed copy
#   ./install.sh --tool-path DIR    installs the tool into DIR instead (DIR/replayvisor)
#   ./install.sh --single-file DIR  publishes a self-contained linux-x64 single binary DIR/replayvisor
# The tool is self-contained too (its package carries the .NET runtime): running it needs no .NET;
# building it needs the .NET 10 SDK. Packages come only from artifacts/packages (no network).
# Every failure is one line on stderr.
set -euo pipefail
cd "$(dirname "$0")"
die() { echo "install.sh: $*" >&2; exit 1; }

mode=global dest=
case "${1:-}" in
  "") ;;
  --tool-path) mode=tool-path; dest=${2:-}; [ -n "$dest" ] || die "--tool-path needs a directory" ;;
  --single-file) mode=single-file; dest=${2:-}; [ -n "$dest" ] || die "--single-file needs a directory" ;;
  -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) die "unknown option '$1' (try ./install.sh --help)" ;;
esac

# The packages are for Linux on x86-64; building them needs the .NET 10 SDK (or newer).
[ "$(uname -s) $(uname -m)" = "Linux x86_64" ] ||
  die "replayvisor is built for Linux on x86-64 (linux-x64); this is $(uname -s) $(uname -m)"
command -v dotnet >/dev/null || die "the .NET 10 SDK is needed and 'dotnet' is not on the PATH (https://dot.net/download)"
sdk=$(dotnet --version 2>/dev/null) || die "'dotnet' does not work: run 'dotnet --info' to see why"
[ "${sdk%%.*}" -ge 10 ] 2>/dev/null || die ".NET SDK $sdk is too old: replayvisor needs the .NET 10 SDK or newer (https://dot.net/download)"

# Where it goes must be writable: say so now, not after the build.
case "$mode" in
  global) dest=$HOME/.dotnet/tools ;;
esac
mkdir -p "$dest" 2>/dev/null && [ -w "$dest" ] && [ -x "$dest" ] || die "cannot write to $dest: choose another directory"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() { "$@" >"$log" 2>&1 || die "'$*' failed: $(grep -m1 -E 'error|Error|failed' "$log" || tail -1 "$log")"; }

if [ "$mode" = single-file ]; then
  # ReadyToRun: precompiled code starts faster (README "Install" has the figures).
  run dotnet publish src/Cli -c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -p:PublishReadyToRun=true -o artifacts/single-file -nologo
  cp artifacts/single-file/replayvisor "$dest/replayvisor" || die "cannot write $dest/replayvisor"
  echo "installed $dest/replayvisor (self-contained linux-x64, $(du -h "$dest/replayvisor" | cut -f1))"
  case ":$PATH:" in *":$dest:"*) ;; *) echo "add it to your PATH: export PATH=\"$dest:\$PATH\"";; esac
  exit 0
fi

# Two packages: Replayvisor.linux-x64 (self-contained, ReadyToRun) and Replayvisor, which points to it.
run dotnet pack src/Cli -c Release -nologo -o artifacts/packages
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' src/Cli/Replayvisor.Cli.csproj | head -1)
# Only the local folder as a package source: installing works offline and never picks up another
# package of the same name.
config=artifacts/packages/nuget.config
printf '<?xml version="1.0" encoding="utf-8"?>\n<configuration><packageSources><clear /><add key="local" value="%s" /></packageSources></configuration>\n' \
  "$PWD/artifacts/packages" > "$config"
where=(--global); [ "$mode" = tool-path ] && where=(--tool-path "$dest")
# Uninstall first: a rebuilt package keeps its version number, and update would keep the old bits.
dotnet tool uninstall "${where[@]}" replayvisor >/dev/null 2>&1 || true
run dotnet tool install "${where[@]}" --configfile "$config" --version "$version" Replayvisor
echo "installed replayvisor $version in $dest (self-contained linux-x64: needs no .NET runtime)"

if [ "$mode" = global ]; then
  case ":$PATH:" in
    *":$HOME/.dotnet/tools:"*) ;;
    *)
      line='export PATH="$PATH:$HOME/.dotnet/tools"'
      for rc in "$HOME/.bashrc" "$HOME/.zshrc"; do
        if [ -f "$rc" ] || [ "$rc" = "$HOME/.bashrc" ]; then
          grep -qsF "$line" "$rc" || printf '\n# .NET tools (replayvisor)\n%s\n' "$line" >> "$rc"
        fi
      done
      echo "added ~/.dotnet/tools to PATH in ~/.bashrc (and ~/.zshrc if present); for this shell run: $line" ;;
  esac
fi
