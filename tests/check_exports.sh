#!/bin/sh
# Every symbol libint8train exports starts with i8t_ (the version script in
# cmake/int8train.map keeps the rest local).
# usage: check_exports.sh <path to libint8train.so> [nm]
set -eu
lib=$1 nm=${2:-nm}
syms=$("$nm" -D --defined-only "$lib" | awk 'NF == 3 { print $3 }')
[ -n "$syms" ] || { echo "no exported symbols read from $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^i8t_' || true)
if [ -n "$bad" ]; then
  echo "exported without the i8t_ prefix:"
  printf '%s\n' "$bad"
  exit 1
fi
echo "$(printf '%s\n' "$syms" | wc -l) exported symbols, all i8t_"
