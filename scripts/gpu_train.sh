#!/usr/bin/env bash
# One prepared run for a lent GPU machine (H100/H200): generate a phantom training set
# and a held-out test set, train both models, evaluate them; about 10 minutes on an H100.
#
#   scripts/gpu_train.sh                 generate + train + evaluate; copies the logs, the
#                                        evaluation, both JSON cards and the classifier's
#                                        weights (in parts) into $OUT
#   scripts/gpu_train.sh fetch-segmenter copies the segmenter's weights (in parts) into $OUT;
#                                        run it right after, on the same warm machine
#
# The device tool brings back at most 8 files of 16 MiB (64 MiB in all) per call, and the
# two fp16 weight files are 43 + 47 MB, hence two calls and 15 MiB parts. Rebuild here:
#   cat classifier.safetensors.part-* > models/classifier.safetensors   (same for segmenter)
# and copy the JSON cards beside them; core.models.load_models checks each sha256.
#
# The machine's python3 has CUDA PyTorch but not MONAI, pydicom, pylibjpeg or
# sqlite-utils: carry their wheels in .whl (see /work/.library/device/README.md), e.g.
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl monai==1.6.1 pydicom==3.0.2
# and call the device tool with carry [".whl"] and the command "bash scripts/gpu_train.sh".
#
# Knobs (environment): OUT (results, default ./gpu-run), WORK (scratch, default
# /tmp/bonescan-gpu), TRAIN_CASES (2000), TEST_CASES (300), SHARDS (12), STEPS (6000),
# LR (0.01, the paper's; 0.001 is the other candidate), SEED (0), SEG_ROWS (512),
# DEADLINE (seconds from the start by which evaluation must begin; default 450).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-$PWD/gpu-run}"
WORK="${WORK:-/tmp/bonescan-gpu}"
TRAIN_CASES="${TRAIN_CASES:-2000}"
TEST_CASES="${TEST_CASES:-300}"
SHARDS="${SHARDS:-12}"
STEPS="${STEPS:-6000}"
LR="${LR:-0.01}"
SEED="${SEED:-0}"
SEG_ROWS="${SEG_ROWS:-512}"
DEADLINE="${DEADLINE:-450}"
PY="${PYTHON:-python3}"
PART=15M

if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
# tqdm reads TQDM_* from the environment: one progress line every 15 s keeps the log short
export TQDM_MININTERVAL=15
mkdir -p "$OUT" "$WORK"
LOG="$OUT/log.txt"

split_into_out() {  # split_into_out NAME: weights of model NAME into $OUT in parts
    split -b "$PART" -d "$WORK/model/$1.safetensors" "$OUT/$1.safetensors.part-"
    sha256sum "$WORK/model/$1.safetensors" | tee -a "$LOG"
}

if [ "${1:-}" = "fetch-segmenter" ]; then
    split_into_out segmenter
    exit 0
fi

start=$(date +%s)
log() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$LOG"; }
log "device: $("$PY" -c 'from core.device import describe_device; print(describe_device())')"

# 1. Generate: training shards and the held-out test set at once, each its own seed (the
#    test seed is not a training seed, so training never sees a test patient).
rm -rf "$WORK"/train* "$WORK/test" "$WORK/model"
per=$(((TRAIN_CASES + SHARDS - 1) / SHARDS))
pids=()
shards=()
for i in $(seq 1 "$SHARDS"); do
    shards+=("$WORK/train$i")
    "$PY" -m core generate "$WORK/train$i" --cases "$per" --seed $((1000 + i)) \
        >"$WORK/gen$i.log" 2>&1 &
    pids+=($!)
done
"$PY" -m core generate "$WORK/test" --cases "$TEST_CASES" --seed 999 >"$WORK/gen_test.log" 2>&1 &
pids+=($!)
for p in "${pids[@]}"; do
    wait "$p" || { tail -n 20 "$WORK"/gen*.log | tee -a "$LOG"; exit 1; }
done
log "generated $((per * SHARDS)) training and $TEST_CASES test cases"

# 2. Train, with whatever time is left before the deadline (reading the data and building
#    the models take about a minute of it).
budget=$((DEADLINE - ($(date +%s) - start) - 60))
[ "$budget" -gt 60 ] || { log "no time left to train (budget $budget s)"; exit 1; }
log "training: steps $STEPS, lr $LR, seed $SEED, time budget $budget s"
"$PY" -m core train "${shards[@]}" --out "$WORK/model" --steps "$STEPS" --lr "$LR" \
    --seed "$SEED" --seg-crop-rows "$SEG_ROWS" --val-every 1000 --val-cases 100 \
    --checkpoint-every 100000 --time-budget "$budget" --workers 14 2>&1 | tee -a "$LOG"
log "trained"

# 3. Evaluate on the held-out set.
"$PY" -m core evaluate "$WORK/test" --model "$WORK/model" --json "$OUT/eval.json" 2>&1 |
    tee -a "$LOG" || log "evaluation failed"
log "evaluated"

cp "$WORK/model/classifier.json" "$WORK/model/segmenter.json" "$OUT/"
split_into_out classifier
log "done; now run: scripts/gpu_train.sh fetch-segmenter"
