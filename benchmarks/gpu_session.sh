#!/usr/bin/env bash
# One GPU session for issue 25, run through the device tool from the repository root:
#   bash benchmarks/gpu_session.sh suite     # jpose.bench --suite gpu + profiles
#   bash benchmarks/gpu_session.sh h36m      # tcn243 on h36m_gt_compact, bf16, with eval
# Wheels the GPU image lacks travel in .whl/; data in .devdata/ (JPOSE_DATA_DIR layout).
# Results go to $OUT (the device tool brings them back); BENCHMARKS.md records them.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD"
export JPOSE_DATA_DIR="$PWD/.devdata" TFDS_DATA_DIR=/tmp/tfds JPOSE_COMPILATION_CACHE=/tmp/xla
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
case "${1:-suite}" in
  suite)
    timeout 470 python3 -m jpose.bench --suite gpu --out "$OUT/suite.jsonl" \
        --budget_s "${BUDGET:-380}" 2>&1 | grep -v "^W[0-9]" | tee "$OUT/suite.log"
    timeout 60 python3 -m jpose.bench --config tcn243 --batch-size 1024 --dtype bfloat16 \
        --steps-per-dispatch 10 --steps 50 --profile /tmp/prof_tcn --json \
        > "$OUT/tcn243_profile.json" 2>"$OUT/tcn243_profile.err"
    tail -c 3000 "$OUT/tcn243_profile.json"
    ;;
  h36m)
    python3 .devdata/h36m_gt_compact/decode.py /tmp/h36m >/dev/null || exit 1
    t0=$(date +%s)
    timeout 150 python3 -m jpose.prepare --dataset h36m --manual_dir /tmp/h36m 2>&1 | tail -3
    echo "prepare_s $(( $(date +%s) - t0 ))"
    timeout "${TRAIN_TIMEOUT:-300}" python3 -m jpose.main --config configs/tcn243.py \
        --workdir /tmp/tcn243_h36m --config.data.name=h36m --config.data.manual_dir=/tmp/h36m \
        --config.train.compute_dtype=bfloat16 --config.train.steps_per_dispatch=10 \
        --config.train.num_steps="${STEPS:-14000}" --config.train.log_every=1000 \
        --config.train.checkpoint_every="${STEPS:-14000}" 2>&1 | grep -v "^W[0-9]" \
        | tail -60 | tee "$OUT/tcn243_h36m.log"
    cp /tmp/tcn243_h36m/eval_results.* "$OUT/" 2>/dev/null
    echo "total_s $(( $(date +%s) - t0 ))"
    ;;
esac
