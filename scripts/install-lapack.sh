#!/usr/bin/env bash
# Installs the system LAPACK that the optional `lapack` feature links against: Debian's
# OpenBLAS (BLAS + LAPACK in one library, found by ndarray-linalg's `openblas-system`).
# Idempotent and quiet when everything is already there; uses sudo only when not root.
set -euo pipefail

# libopenblas-dev: the library and its openblas.pc; pkg-config: how openblas-src finds it first
# (without it, it falls back to plain -lopenblas, which Debian's alternatives also provide).
packages=(libopenblas-dev pkg-config)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-lapack.sh: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-lapack.sh: installing ${missing[*]} (Debian's packages)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# apt's chatter goes to a log, shown only if something fails.
if ! { "${sudo[@]}" apt-get update -qq &&
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-lapack.sh: apt-get failed" >&2
  exit 1
fi
