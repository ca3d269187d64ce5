#!/usr/bin/env bash
# The README's main command: installs the dependencies (Debian 12, as root),
# builds int8train, checks the kernels, and trains the default model
# (resnet8) with 8-bit integer arithmetic on Fashion-MNIST, printing the
# final test accuracy. Extra arguments go to `int8train train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build/release -j"$(nproc)"
build/release/cli/int8train info --self-check
build/release/cli/int8train train --model resnet8 --data fashion-mnist --precision int8 \
  --epochs "${I8T_QUICKSTART_EPOCHS:-2}" --log-json runs/quickstart-int8.jsonl "$@"
