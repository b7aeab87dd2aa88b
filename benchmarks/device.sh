#!/usr/bin/env bash
# What an accelerator changes, measured in one call (issue 14); no test depends on it.
#
#   bash benchmarks/device.sh            # on a machine with a GPU; about 5 minutes on an H200
#   QUICK=1 bash benchmarks/device.sh    # tiny config, small sizes: checks the script on a CPU
#
# Writes under benchmarks/results/device/ (flat JSON dicts, as the other benchmarks):
#   train_step_fp32.json, train_step_bf16.json  the paper-config SOST step (batch 8 x 4800
#       pixels): seconds per step, GFLOP/s and fraction of the measured matmul peak
#       (`train_step.py`; no PyTorch comparison, which is a CPU measurement);
#   match.json  the chi-square matcher at 2413 templates x 4800 pixels over 1 and 5 million
#       targets (spectra/s, fraction of the matmul peak and of the two bare products), and
#       `infer` end to end from mock FITS files (`match.py`);
#   device.txt  what the machine is (JAX devices, nvidia-smi).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/results/device
[[ -n "${QUICK:-}" ]] && OUT=$(mktemp -d)  # a check's numbers are not results
mkdir -p "$OUT"
echo "writing to $OUT"
PY=${PYTHON:-python}

{
    "$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
} | tee "$OUT/device.txt"

if [[ -n "${QUICK:-}" ]]; then
    STEP=(--config tiny --steps 1 --warmup 1)
    MATCH=(--quick)
else
    STEP=(--config paper --steps 10 --warmup 2)
    MATCH=(--n 1000000 5000000 --chunk 65536 --peak-sizes 4096 8192 --infer-n 20000)
fi

"$PY" benchmarks/train_step.py --no-torch "${STEP[@]}" --out "$OUT/train_step_fp32.json"
"$PY" benchmarks/train_step.py --no-torch "${STEP[@]}" \
    --set model.dtype=bfloat16 --set dis.dtype=bfloat16 --out "$OUT/train_step_bf16.json"
"$PY" benchmarks/match.py "${MATCH[@]}" --out "$OUT/match.json"
