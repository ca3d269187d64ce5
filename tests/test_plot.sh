#!/bin/sh
# scripts/plot_curves.sh: two small JSON-lines logs (one with a repeated
# epoch, as a resumed run writes) make a PNG; bad usage exits non-zero.
# Usage: test_plot.sh PATH/TO/scripts/plot_curves.sh
set -u
script=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/i8t_test_plot_XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for e in 1 2 3; do
  echo "{\"epoch\":$e,\"epochs\":3,\"train_loss\":0.$((9 - e)),\"test_loss\":0.$((8 - e)),\"test_accuracy\":0.$((80 + e)),\"images_per_second\":100,\"precision\":\"int8\"}"
done > "$tmp/int8.jsonl"
for e in 1 2 2 3; do
  echo "{\"epoch\":$e,\"epochs\":3,\"train_loss\":0.$((7 - e)),\"test_loss\":null,\"test_accuracy\":0.$((84 + e)),\"images_per_second\":300,\"precision\":\"fp32\"}"
done > "$tmp/fp32.jsonl"

sh "$script" "$tmp/int8.jsonl" "$tmp/fp32.jsonl" "$tmp/out.png" || fail "plot_curves.sh exited $?"
[ -s "$tmp/out.png" ] || fail "no PNG written"
[ "$(head -c 4 "$tmp/out.png" | od -An -tx1 | tr -d ' \n')" = 89504e47 ] || fail "output is not a PNG"
echo "ok: PNG of $(wc -c < "$tmp/out.png") bytes"

PLOT_CURVES_PLAIN_PNG=1 sh "$script" "$tmp/int8.jsonl" "$tmp/fp32.jsonl" "$tmp/plain.png" >/dev/null ||
  fail "plain png terminal"
[ -s "$tmp/plain.png" ] || fail "no PNG with the plain png terminal"
echo "ok: plain png terminal"

sh "$script" "$tmp/int8.jsonl" 2>/dev/null && fail "one argument accepted"
sh "$script" "$tmp/int8.jsonl" "$tmp/none.jsonl" "$tmp/x.png" 2>/dev/null && fail "missing log accepted"
: > "$tmp/empty.jsonl"
sh "$script" "$tmp/int8.jsonl" "$tmp/empty.jsonl" "$tmp/x.png" 2>/dev/null && fail "empty log accepted"
echo "ok: bad usage refused"
