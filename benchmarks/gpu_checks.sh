#!/bin/bash
# Every GPU check and GPU measurement of README "Benchmarks", in one go, within BUDGET seconds (default 540;
# each part is cut at its own share or at what is left; exit 1 if any part failed or was cut):
#
#   bash benchmarks/gpu_checks.sh [OUT_DIR]       # logs to OUT_DIR (default: runs/gpu-checks)
#   SKIP="speed schedule" BUDGET=300 bash benchmarks/gpu_checks.sh   # leave parts out (by their log's name)
#
# Runs from a checkout without installing it (the repository root on PYTHONPATH), with the machine's own
# torch. In order of importance, so that a cut loses the least: the CUDA tests (pytest -m gpu); each
# --precision against 32 on ae and classify (precision.py: speed and validation quality, same seeds); the
# ratios of speed.py at 200 and 500 images with a joint round per --precision; the cost of --lambda auto
# against the run it tunes; the epoch seconds of a whole irls per schedule from the command line; bcd
# against batched (schedule_speed.py). Only the logs land in OUT_DIR; runs and data go to a temporary folder.
cd "$(dirname "$0")/.." || exit 2
out=${1:-runs/gpu-checks}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
deadline=$((SECONDS + ${BUDGET:-540}))
status=0

# part NAME SHARE LOG COMMAND...: run COMMAND for at most SHARE seconds (less if the budget is nearly spent)
part() {
  local name=$1 share=$2 log=$3; shift 3
  [[ " $SKIP " == *" ${log%%.txt} "* || " $SKIP " == *" ${log%%_*} "* ]] && return
  local left=$((deadline - SECONDS - 5))
  ((share > left)) && share=$left
  if ((share < 20)); then echo "== $name: skipped, the budget is spent" | tee -a "$out/$log"; status=1; return; fi
  : > "$out/$log"                              # a log holds this call's numbers only
  echo "== $name (at most ${share} s)" | tee -a "$out/$log"
  timeout "$share" "$@" 2>&1 | tee -a "$out/$log"
  local rc=${PIPESTATUS[0]}
  ((rc == 124)) && echo "== $name: cut at ${share} s" | tee -a "$out/$log"
  ((rc == 0)) || status=1
}

lambda_auto_cost() {        # wall seconds of the ae recipe's irls with --lambda auto against --lambda 1
  local data=$work/prec/data-32px-200-200-seed1
  [ -f "$data/.complete" ] || python3 -m jointnet_cli prepare --builtin synth8 --size 32 --train 200 --test 200 --seed 1 \
      --data-dir "$data" --force > /dev/null || return 1
  for lam in 1 auto; do
    local t0=$SECONDS
    python3 -m jointnet_cli irls --recipe recipes/bench-synth8-ae.toml --lambda $lam --data-dir "$data" \
        --run "$work/lam-$lam" --device cuda --json > /dev/null || return 1
    echo "ae, --lambda $lam: $((SECONDS - t0)) s wall"
  done
}
export -f lambda_auto_cost
export work

python3 -c "import sys, torch; torch.cuda.is_available() or sys.exit('gpu_checks.sh: no CUDA device here'); \
print('torch', torch.__version__, torch.cuda.get_device_name())" > "$out/device.txt" || exit 2
cat "$out/device.txt"
part "python -m pytest -m gpu" 110 pytest.txt python3 -m pytest -q -m gpu -p no:cacheprovider tests
part "precision.py --device cuda (ae, classify; seeds 0 1; validation copy)" 220 precision.txt \
  python3 benchmarks/precision.py --device cuda --seeds 0,1 --out "$work/prec"
cp "$work/prec/precision.json" "$out/" 2>/dev/null
part "speed.py --device cuda --size 64 --train 200,500 --ns 2,8,16 --rounds 5 --precisions 32,bf16-mixed,16-mixed" \
  130 speed.txt python3 benchmarks/speed.py --device cuda --size 64 --train 200,500 --ns 2,8,16 --rounds 5 \
  --precisions 32,bf16-mixed,16-mixed
part "--lambda auto against --lambda 1 (ae recipe, validation copy)" 90 lambda_auto.txt bash -c lambda_auto_cost
part "cli_epoch_speed.sh" 60 cli_epoch_speed.txt bash benchmarks/cli_epoch_speed.sh "$work/cli"
part "schedule_speed.py --n 8,32 --size 64 --device cuda" 60 schedule_speed.txt \
  python3 benchmarks/schedule_speed.py --n 8,32 --size 64 --device cuda
exit $status
