#!/usr/bin/env bash
# Installs int8train's build, test and data dependencies from Debian 12
# packages (run as root). Idempotent: does nothing when all are present.
set -euo pipefail

NATIVE_PACKAGES=(build-essential cmake ninja-build pkg-config
  libdnnl-dev libhwloc-dev hwloc libcmocka-dev libbenchmark-dev libsimde-dev zlib1g-dev python3
  dataset-fashion-mnist gnuplot-nox)
ARM_PACKAGES=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user
  libcmocka-dev:arm64 libhwloc-dev:arm64 zlib1g-dev:arm64)

want=("${NATIVE_PACKAGES[@]}")
if [ "${1:-}" = "--with-arm" ]; then
  want+=("${ARM_PACKAGES[@]}")
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    NEED_UPDATE=1
  fi
fi

missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && [ -z "${NEED_UPDATE:-}" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
