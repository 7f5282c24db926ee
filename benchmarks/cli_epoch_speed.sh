#!/bin/bash
# Seconds per epoch of a whole `jointnet irls` run from the command line, `--schedule auto` against `bcd`:
#
#   bash benchmarks/cli_epoch_speed.sh [OUT_DIR]                 # a GPU: 8 x 500 synth8 images at 64 px
#   DEVICE=cpu SIZE=32 TRAIN=40 bash benchmarks/cli_epoch_speed.sh
#
# Prepares synth8 in a temporary folder, runs a short irls (3 warm-start epochs, 2 iterations of 2 epochs)
# with each schedule, and prints the schedules state.json recorded, the seconds of every epoch (their
# median), the wall time of the command, and the final mean test MSE. Runs from a checkout, not installed.
cd "$(dirname "$0")/.." || exit 2
out=${1:-runs/cli-epoch-speed}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -m jointnet_cli prepare --builtin synth8 --size "${SIZE:-64}" --train "${TRAIN:-500}" --test 100 \
    --data-dir "$tmp/data" > /dev/null || exit 1
for schedule in auto bcd; do
  t0=$(date +%s.%N)
  python3 -m jointnet_cli irls --task ae --datasets @synth8 --run "$tmp/$schedule" --data-dir "$tmp/data" \
      --device "${DEVICE:-cuda}" --epochs 3 --epochs-per-iter 2 --max-iters 2 --tol 1e-9 --schedule $schedule \
      --json > "$out/$schedule.json" 2> "$out/$schedule.err" || { tail -5 "$out/$schedule.err"; exit 1; }
  t1=$(date +%s.%N)
  cp "$tmp/$schedule/state.json" "$out/state-$schedule.json"
  python3 - "$schedule" "$t0" "$t1" "$out/state-$schedule.json" <<'PY'
import json, statistics, sys
schedule, wall, path = sys.argv[1], float(sys.argv[3]) - float(sys.argv[2]), sys.argv[4]
state = json.load(open(path))
epochs = state["warmstart"]["history"] + [h for it in state["irls"]["iterations"] for h in it["history"]]
seconds = [h["seconds"] for h in epochs]
mse = statistics.mean(m["mse"] for m in state["irls"]["iterations"][-1]["metrics"].values())
print(f"--schedule {schedule}: trained by {sorted({h['schedule'] for h in epochs})}, {len(epochs)} epochs of "
      f"{' '.join(f'{s:.2f}' for s in seconds)} s (median {statistics.median(seconds):.2f} s), "
      f"{wall:.1f} s wall, final mean test MSE {mse:.5f}")
PY
done
