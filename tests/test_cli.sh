#!/bin/sh
# The int8train command line: every bad usage exits non-zero with a one-line
# reason, --help works on every command, and (when Fashion-MNIST is
# installed) a tiny train -> eval -> resume round trip works end to end.
# Usage: test_cli.sh [EMULATOR ARGS...] PATH/TO/int8train
# (a cross build passes CMAKE_CROSSCOMPILING_EMULATOR in front of the binary).
# I8T_TEST_SCALE=small (qemu) shrinks the end-to-end run.
set -u
FMNIST=/usr/share/datasets/fashion-mnist
fails=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/i8t_test_cli_XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# BIN: a one-line wrapper running the emulator (if any) and the binary.
BIN=$tmp/int8train
{
  echo '#!/bin/sh'
  printf 'exec'
  for word in "$@"; do printf " '%s'" "$word"; done
  echo ' "$@"'
} > "$BIN"
chmod +x "$BIN"

# expect CODE LINES REGEX ARGS...: exit status CODE, output matching REGEX,
# and (LINES > 0) exactly LINES lines of output.
expect() {
  code=$1 lines=$2 regex=$3
  shift 3
  out=$("$BIN" "$@" 2>&1)
  rc=$?
  n=$(printf '%s\n' "$out" | wc -l)
  if [ "$rc" -ne "$code" ] || ! printf '%s\n' "$out" | grep -Eq -- "$regex" ||
     { [ "$lines" -gt 0 ] && [ "$n" -ne "$lines" ]; }; then
    echo "FAIL: int8train $* -> exit $rc (want $code), $n lines, output:"
    printf '%s\n' "$out" | head -20
    fails=$((fails + 1))
  else
    echo "ok: int8train $* -> $rc: $(printf '%s\n' "$out" | tail -n 1)"
  fi
}

# --- bad usage: exit 2, one line naming the problem -----------------------
expect 2 1 "unknown option '--bogus'"        train --bogus
expect 2 1 "--epochs needs a value"           train --epochs
expect 2 1 "'abc' is not a whole number"      train --epochs abc
expect 2 1 "--epochs 0 is out of range"       train --epochs 0
expect 2 1 "--epochs: '2x' is not a whole"    train --epochs 2x
expect 2 1 "--batch 0 is out of range"        train --batch=0
expect 2 1 "--lr -1 is out of range"          train --lr -1
expect 2 1 "--lr: 'fast' is not a number"     train --lr fast
expect 2 1 "--precision: unknown value 'int4'" train --precision int4
expect 2 1 "--wgrad-bits: unknown value '4'"  train --wgrad-bits 4
expect 2 1 "--pin: unknown value 'spread'"    train --pin spread
expect 2 1 "--norm: unknown value"            train --norm layer
expect 2 1 "--act-rounding: unknown value"    train --act-rounding up
expect 2 1 "--threads -2 is out of range .0..1024."     train --threads -2
expect 2 1 "--seed: '-1' is not"              train --seed -1
expect 2 1 "unexpected argument 'extra'"      train extra
expect 2 1 "--data needs a non-empty value"   train --data=
expect 2 1 "--checkpoint FILE is required"    eval
expect 2 1 "unknown option '--epochs'"        eval --epochs 3
expect 2 1 "unknown command 'fly'"            fly

# --- help and run-time failures ----------------------------------------------
expect 0 0 "--wgrad-bits 8.16"               train --help
expect 0 0 "--act-rounding"                   train -h
expect 0 0 "--checkpoint FILE"                eval --help
expect 0 0 "train"                            --help
expect 1 1 "cannot open checkpoint $tmp/none" eval --checkpoint "$tmp/none"
expect 1 1 "--data: data: $tmp/nodir"         train --data "$tmp/nodir"
echo "not a checkpoint" > "$tmp/text.ckpt"
expect 1 1 "not an int8train checkpoint"      eval --checkpoint "$tmp/text.ckpt"
expect 1 1 "not an int8train checkpoint"      train --resume "$tmp/text.ckpt"

# --- end to end on a Fashion-MNIST subset -------------------------------------
if [ -f "$FMNIST/train-images-idx3-ubyte.gz" ]; then
  if [ "${I8T_TEST_SCALE:-}" = small ]; then
    common="--limit-train 64 --limit-test 200 --batch 32 --threads 2"
  else
    common="--limit-train 256 --limit-test 200 --batch 64 --threads 2"
  fi
  expect 2 1 "--model: " train --model nosuchnet $common
  expect 0 0 "final test accuracy: " train $common --epochs 1 \
    --checkpoint "$tmp/run.ckpt" --log-json "$tmp/logs/run.jsonl"
  acc=$(printf '%s\n' "$out" | sed -n 's/^final test accuracy: \([0-9.]*\).*/\1/p')
  [ "$(wc -l < "$tmp/logs/run.jsonl")" -eq 1 ] || { echo "FAIL: log lines"; fails=$((fails + 1)); }
  grep -q '"epoch":1,.*"train_loss":.*"test_accuracy":.*"images_per_second":.*"precision":"int8"' \
    "$tmp/logs/run.jsonl" || { echo "FAIL: log fields"; fails=$((fails + 1)); }
  # eval reproduces the accuracy the run printed, on the same 200 images.
  expect 0 0 "test accuracy: $acc " eval --checkpoint "$tmp/run.ckpt" --limit-test 200
  # Resuming: options that differ are refused; raising --epochs continues.
  expect 2 1 "--batch differs from the run" train --resume "$tmp/run.ckpt" --batch 16
  expect 2 1 "--model resnet14 differs" train --resume "$tmp/run.ckpt" --model resnet14
  expect 0 0 "epoch 2/2 " train --resume "$tmp/run.ckpt" --epochs 2 --limit-test 200 \
    --log-json "$tmp/logs/run.jsonl" --model resnet8
  [ "$(wc -l < "$tmp/logs/run.jsonl")" -eq 2 ] || { echo "FAIL: resumed log lines"; fails=$((fails + 1)); }
  # A damaged checkpoint is refused.
  size=$(wc -c < "$tmp/run.ckpt")
  head -c $((size / 2)) "$tmp/run.ckpt" > "$tmp/cut.ckpt"
  expect 1 1 "truncated checkpoint" eval --checkpoint "$tmp/cut.ckpt"
else
  echo "skipped: end-to-end run ($FMNIST absent: Debian package dataset-fashion-mnist)"
fi

if [ "$fails" -ne 0 ]; then
  echo "$fails CLI check(s) failed"
  exit 1
fi
echo "all CLI checks passed"
