#!/usr/bin/env bash
# Installs the system LAPACK that the optional `lapack` feature links against: Debian's
# OpenBLAS (BLAS + LAPACK in one library, found by ndarray-linalg's `openblas-system`).
# Idempotent and quiet when everything is already there; uses sudo only when not root.
set -euo pipefail

packages=(libopenblas-dev)

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

echo "install-lapack.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
