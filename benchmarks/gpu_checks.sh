#!/bin/bash
# Every GPU check and GPU measurement of README "Benchmarks", in one go (about 3 minutes on an H200,
# at most 10 minutes; exit 1 if any part failed):
#
#   bash benchmarks/gpu_checks.sh [OUT_DIR]       # logs to OUT_DIR (default: runs/gpu-checks)
#
# Runs from a checkout without installing it (the repository root on PYTHONPATH), with the
# machine's own torch: the CUDA tests (pytest -m gpu), batched vs bcd for n = 8 and 32 at
# 64 px, speed.py's ratios on the GPU with a joint round per --precision, a short irls run per
# schedule from the command line, and the quality of each --precision against 32 (same seeds).
cd "$(dirname "$0")/.." || exit 2
out=${1:-runs/gpu-checks}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -c "import sys, torch; torch.cuda.is_available() or sys.exit('gpu_checks.sh: no CUDA device here'); \
print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 2
status=0
echo "== python -m pytest -m gpu"
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tee "$out/pytest.txt" | tail -15
[ "${PIPESTATUS[0]}" = 0 ] || status=1
echo "== schedule_speed.py --n 8,32 --size 64 --device cuda"
timeout 150 python3 benchmarks/schedule_speed.py --n 8,32 --size 64 --device cuda 2>&1 | tee "$out/schedule_speed.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
echo "== speed.py --device cuda --size 64 --ns 8 --train 500 --precisions 32,bf16-mixed,16-mixed"
timeout 150 python3 benchmarks/speed.py --device cuda --size 64 --ns 8 --train 500 \
  --precisions 32,bf16-mixed,16-mixed 2>&1 | tee "$out/speed.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
echo "== cli_epoch_speed.sh"
timeout 120 bash benchmarks/cli_epoch_speed.sh "$out/cli" 2>&1 | tee "$out/cli_epoch_speed.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
echo "== --precision quality: ae and classify, seed 0, the benchmark recipes at 64 training images per dataset"
python3 -m jointnet_cli prepare --builtin synth8 --size 32 --train 64 --test 64 --data-dir "$out/prec-data" \
  >/dev/null 2>&1 || status=1
for task in ae classify; do
  for p in 32 bf16-mixed 16-mixed; do
    timeout 60 python3 -m jointnet_cli irls --recipe "recipes/bench-synth8-$task.toml" --data-dir "$out/prec-data" \
      --run "$out/prec-$task-$p" --device cuda --precision "$p" --epochs 2 --epochs-per-iter 1 --max-iters 2 \
      --json 2>/dev/null | python3 -c "import json, sys; r = json.load(sys.stdin); m = r['iterations'][-1]['metrics']; \
k = next(iter(next(iter(m.values())))); print('$task', '$p', k, sum(v[k] for v in m.values()) / len(m))" \
      2>&1 | tee -a "$out/precision_quality.txt" || status=1
  done
done
exit $status
