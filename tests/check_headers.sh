#!/bin/sh
# Every public header compiles on its own, in C11 and in C++ (pedantic, no
# warnings), whatever the include order: checks self-containment.
# usage: check_headers.sh <include dir> <c compiler> [<c++ compiler>]
set -eu
inc=$1 cc=$2 cxx=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for h in "$inc"/int8train/*.h; do
  name=int8train/$(basename "$h")
  printf '#include <%s>\nint main(void) { return 0; }\n' "$name" > "$tmp/t.c"
  "$cc" -std=c11 -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$inc" "$tmp/t.c" || { echo "C: $name is not self-contained"; status=1; }
  if [ -n "$cxx" ]; then
    cp "$tmp/t.c" "$tmp/t.cc"
    "$cxx" -Wall -Wextra -Werror -fsyntax-only -I"$inc" "$tmp/t.cc" || { echo "C++: $name is not self-contained"; status=1; }
  fi
done
exit $status
