#!/usr/bin/env bash
# Builds the GRUB i386-xen guest images from Debian's packages without installing anything:
# `apt-get download` fetches grub-xen-bin and grub-common into a cache, `dpkg -x` unpacks them,
# and grub-mkimage -O i386-xen builds one image per guests/grub/*.cfg with that config embedded.
#
#   guests/grub/fetch-and-build.sh [OUTDIR]     (default: guests/build/grub)
#
# Writes OUTDIR/grub-NAME.elf for NAME in halt, sleep, key, and OUTDIR/STATUS: one line,
# "built grub-xen-bin VERSION" or "unavailable: REASON". Exit codes: 0 built (or already built
# from the cache), 3 the packages could not be downloaded (offline, no apt), 4 grub-mkimage failed.
# Downloads give up after a short timeout, so an offline machine is told so in seconds.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/../build/grub"}
mkdir -p "$out/debs" || { echo "grub: cannot create $out" >&2; exit 4; }
out=$(cd "$out" && pwd)
packages=(grub-xen-bin grub-common)
images=(halt sleep key)

unavailable() {
  echo "unavailable: $1" > "$out/STATUS"
  echo "grub: packages unavailable: $1" >&2
  exit 3
}

have_debs() {
  for p in "${packages[@]}"; do
    compgen -G "$out/debs/${p}_*.deb" >/dev/null || return 1
  done
}

download() {
  command -v apt-get >/dev/null || unavailable "apt-get not found (not a Debian system)"
  local opts=(-q -o Acquire::Retries=0 -o Acquire::http::Timeout=10 -o Acquire::https::Timeout=10)
  # Without package lists apt-get download knows no candidate: refresh them once, briefly.
  if ! (cd "$out/debs" && timeout 120 apt-get download "${opts[@]}" "${packages[@]}") >/dev/null 2>"$out/apt.log"; then
    timeout 120 apt-get update "${opts[@]}" >/dev/null 2>>"$out/apt.log" || true
    (cd "$out/debs" && timeout 120 apt-get download "${opts[@]}" "${packages[@]}") >/dev/null 2>>"$out/apt.log" \
      || unavailable "apt-get download ${packages[*]} failed ($(grep -m1 -E '^(E|Err):' "$out/apt.log" | cut -c1-160))"
  fi
}

have_debs || download
have_debs || unavailable "the downloaded files are missing from $out/debs"

root="$out/root"
if [ ! -x "$root/usr/bin/grub-mkimage" ] || [ ! -d "$root/usr/lib/grub/i386-xen" ]; then
  rm -rf "$root"
  for deb in "$out"/debs/*.deb; do
    dpkg -x "$deb" "$root" || { echo "grub: dpkg -x $deb failed" >&2; exit 4; }
  done
fi
command -v dpkg-deb >/dev/null && version=$(dpkg-deb -f "$(ls "$out"/debs/grub-xen-bin_*.deb | head -1)" Version) || version=unknown

for name in "${images[@]}"; do
  cfg="$here/$name.cfg" elf="$out/grub-$name.elf"
  [ -f "$elf" ] && [ "$elf" -nt "$cfg" ] && continue
  # The modules each config's commands need: echo, halt, sleep, read.
  "$root/usr/bin/grub-mkimage" -O i386-xen -d "$root/usr/lib/grub/i386-xen" -p /boot/grub \
      -c "$cfg" -o "$elf.tmp" echo halt sleep read 2>"$out/mkimage.log" \
    || { echo "grub: grub-mkimage for $name failed: $(head -1 "$out/mkimage.log")" >&2; exit 4; }
  mv "$elf.tmp" "$elf"
done
echo "built grub-xen-bin $version" > "$out/STATUS"
