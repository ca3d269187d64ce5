#!/bin/sh
# Plots the training curves of two `int8train train --log-json` runs (usually
# int8 and fp32) into one PNG: loss per epoch on the left, test accuracy per
# epoch on the right. Needs gnuplot (gnuplot-nox is enough).
# Usage: scripts/plot_curves.sh INT8.jsonl FP32.jsonl OUT.png
set -eu

if [ "$#" -ne 3 ]; then
  echo "usage: $0 INT8.jsonl FP32.jsonl OUT.png" >&2
  exit 2
fi
a=$1 b=$2 out=$3
for f in "$a" "$b"; do
  [ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 1; }
done
command -v gnuplot >/dev/null 2>&1 || { echo "$0: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plot_curves_XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# One JSON object per line; a field is "key":value. A resumed run may have
# logged an epoch twice: the last line wins. Output: epoch train_loss
# test_loss test_accuracy(%), sorted by epoch.
extract() {
  awk '
    function field(line, key,    m, v) {
      if (match(line, "\"" key "\":[^,}]*")) {
        v = substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
        gsub(/"/, "", v)
        return v
      }
      return ""
    }
    /"epoch":/ {
      e = field($0, "epoch") + 0
      tl = field($0, "train_loss"); vl = field($0, "test_loss"); acc = field($0, "test_accuracy")
      if (tl == "null" || tl == "") tl = "NaN"
      if (vl == "null" || vl == "") vl = "NaN"
      acc = (acc == "null" || acc == "") ? "NaN" : acc * 100
      row[e] = e " " tl " " vl " " acc
      if (e > max) max = e
    }
    END { for (e = 1; e <= max; e++) if (e in row) print row[e] }
  ' "$1"
}

# Legend: the run's precision, or its file name when both runs share one.
label() {
  p=$(sed -n 's/.*"precision":"\([^"]*\)".*/\1/p' "$1" | head -n 1)
  echo "${p:-$(basename "$1" .jsonl)}"
}

extract "$a" > "$tmp/a.dat"
extract "$b" > "$tmp/b.dat"
for f in a b; do
  [ -s "$tmp/$f.dat" ] || { echo "$0: no epoch records in $(eval echo \$$f)" >&2; exit 1; }
done
la=$(label "$a") lb=$(label "$b")
if [ "$la" = "$lb" ]; then
  la=$(basename "$a" .jsonl)
  lb=$(basename "$b" .jsonl)
fi

# Whole epochs on the x axis, about ten ticks at most.
last=$(cat "$tmp/a.dat" "$tmp/b.dat" | awk '$1 > m { m = $1 } END { print m + 0 }')
xstep=$(( (last + 9) / 10 ))

# pngcairo draws nicer lines but is missing from some gnuplot builds.
terminal="png size 1200,480"
if [ -z "${PLOT_CURVES_PLAIN_PNG:-}" ] && gnuplot -e "set terminal pngcairo" >/dev/null 2>&1; then
  terminal="pngcairo size 1200,480 font ',10'"
fi

gnuplot <<EOF
set terminal $terminal
set output "$out"
set multiplot layout 1,2 title "int8train: $la vs $lb"
set grid
set xtics $xstep
set key top right
set xlabel "epoch"
set ylabel "loss"
set title "loss (thick: train, thin: test)"
plot "$tmp/a.dat" using 1:2 with linespoints lw 2 lc rgb "#d62728" title "$la train", \
     "$tmp/a.dat" using 1:3 with linespoints lw 1 dt 2 lc rgb "#d62728" title "$la test", \
     "$tmp/b.dat" using 1:2 with linespoints lw 2 lc rgb "#1f77b4" title "$lb train", \
     "$tmp/b.dat" using 1:3 with linespoints lw 1 dt 2 lc rgb "#1f77b4" title "$lb test"
set key bottom right
set ylabel "test accuracy (%)"
set title "test accuracy"
plot "$tmp/a.dat" using 1:4 with linespoints lw 2 lc rgb "#d62728" title "$la", \
     "$tmp/b.dat" using 1:4 with linespoints lw 2 lc rgb "#1f77b4" title "$lb"
unset multiplot
EOF
echo "wrote $out"
