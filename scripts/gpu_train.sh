#!/usr/bin/env bash
# One prepared run for a lent GPU machine (H100/H200): generate a phantom training set,
# train both models within a time budget, then time the pipeline on the GPU with them.
#
#   scripts/gpu_train.sh                 generate + train + GPU bench; copies the log, the
#                                        bench JSON, both JSON cards and the classifier's
#                                        weights (in parts) into $OUT
#   scripts/gpu_train.sh fetch-segmenter copies the segmenter's weights (in parts) into $OUT;
#                                        run it right after, on the same warm machine
#
# The held-out evaluation runs afterwards on the development machine, on the same test
# set (seed 2) as every earlier model, so that figures stay comparable and no GPU time
# goes to it:  python -m core evaluate data/phantom-test --model DIR --json eval.json
#
# The device tool brings back at most 8 files of 16 MiB (64 MiB in all) per call, and the
# two fp16 weight files are 43 + 47 MB, hence two calls and 15 MiB parts. Rebuild here:
#   cat classifier.safetensors.part-* > models/classifier.safetensors   (same for segmenter)
# and copy the JSON cards beside them; core.networks.models.load_models checks each sha256.
# The working tree travels to the machine (64 MiB at most): move models/*.safetensors
# (90 MB) aside for the call.
#
# The machine's python3 has CUDA PyTorch but not MONAI, pydicom, sqlite-utils or
# argon2-cffi: carry their wheels in .whl (see /work/.library/device/README.md):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl monai==1.6.1 pydicom==3.0.2 sqlite-utils==4.2.1 sqlite-fts4==1.0.3 \
#       click-default-group==1.2.4 argon2-cffi==25.1.0 argon2-cffi-bindings==26.2.0 \
#       cffi==2.1.1 pycparser==3.12
# and call the device tool with carry [".whl"] and the command "bash scripts/gpu_train.sh".
#
# Knobs (environment): OUT (results, default ./gpu-run), WORK (scratch, default
# /tmp/bonescan-gpu), TRAIN_CASES (2000), SHARDS (14), STEPS (8000, an upper bound: the
# time budget cuts it), LR (0.001: the CPU comparison favoured it over the paper's 0.01),
# SEED (0), SEG_ROWS (512), DEADLINE (seconds from the start by which training must have
# ended; default 420), BENCH_CASES (64).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-$PWD/gpu-run}"
WORK="${WORK:-/tmp/bonescan-gpu}"
TRAIN_CASES="${TRAIN_CASES:-2000}"
SHARDS="${SHARDS:-14}"
STEPS="${STEPS:-8000}"
LR="${LR:-0.001}"
SEED="${SEED:-0}"
SEG_ROWS="${SEG_ROWS:-512}"
DEADLINE="${DEADLINE:-420}"
BENCH_CASES="${BENCH_CASES:-64}"
PY="${PYTHON:-python3}"
PART=15M

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
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
log() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$LOG"; }
log "device: $("$PY" -c 'from core.networks.device import describe_device; print(describe_device())')"

# 1. Generate the training shards at once, each its own seed (1001..; the held-out test
#    set of the development machine is seed 2, so training never sees a test patient).
rm -rf "$WORK"/train* "$WORK/model"
per=$(((TRAIN_CASES + SHARDS - 1) / SHARDS))
pids=()
shards=()
for i in $(seq 1 "$SHARDS"); do
    shards+=("$WORK/train$i")
    "$PY" -m core generate "$WORK/train$i" --cases "$per" --seed $((1000 + i)) \
        >"$WORK/gen$i.log" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || { tail -n 20 "$WORK"/gen*.log | tee -a "$LOG"; exit 1; }
done
log "generated $((per * SHARDS)) training cases"

# 2. Train, with whatever time is left before the deadline (reading the data and building
#    the models take some of it).
budget=$((DEADLINE - ($(date +%s) - start) - 45))
[ "$budget" -gt 60 ] || { log "no time left to train (budget $budget s)"; exit 1; }
log "training: steps $STEPS, lr $LR, seed $SEED, time budget $budget s"
"$PY" -m core train "${shards[@]}" --out "$WORK/model" --steps "$STEPS" --lr "$LR" \
    --seed "$SEED" --seg-crop-rows "$SEG_ROWS" --val-every 2000 --val-cases 100 \
    --checkpoint-every 100000 --time-budget "$budget" --workers 14 2>&1 | tee -a "$LOG"
log "trained"
cp "$WORK/model/classifier.json" "$WORK/model/segmenter.json" "$OUT/"
split_into_out classifier

# 3. The GPU figures of the pipeline with the new models (file to stored result per case,
#    and one batch of all scans); a failure here keeps the weights already in $OUT.
"$PY" -m core bench --cases "$BENCH_CASES" --model "$WORK/model" --device cuda \
    --json "$OUT/bench-gpu.json" 2>&1 | tee -a "$LOG" || log "bench failed"
log "done; now run: scripts/gpu_train.sh fetch-segmenter"
