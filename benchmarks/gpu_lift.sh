#!/usr/bin/env bash
# benchmarks/lift.py runs on the GPU machine, one after another within one wall-clock budget (each
# run is cut at what is left of it).
#
# One at a time: ten lift.py runs started side by side there (2026-11-30, H200, 16 cores, 2 torch
# threads each; benchmarks/results/gpu_lift_h200_2026-11-30.txt) printed no finished search and no
# finished seed in 530 s, while one run alone then trained ml-100k's lightgcn in 14-17 s, kg_hybrid
# in 65 s and RecBole's LightGCN in 93 s. Whether the GPU's time-slicing or the 16 cores' load did
# it was not measured; the searches asked of them (6 trials and confirmation) would not have fit in
# 530 s even alone.
#
# Prepare here first: `bash benchmarks/gpu_prepare.sh` (the project's wheels, RecBole's and the
# MovieLens + HetRec files, in the git-ignored .whl/ and .devdata/); carry both folders.
#
#   bash benchmarks/gpu_lift.sh BUDGET_S "TAG:LIFT ARGS" ["TAG:LIFT ARGS" ...]
#
# BUDGET_S counts from the script's start (the wheels' install included); give the device run a
# timeout_s about 30 s longer. Every run gets `--device cuda --scratch /tmp/lift/TAG --data
# .devdata/movielens --tag TAG` and its own log. lift.py writes each seed's rows as they finish
# (results/lift_*_TAG.partial.jsonl), so a run cut at the budget keeps the seeds it finished; read
# them with `lift.py --from-partial` or `--combine`. After each run the archive $OUT/gpu_lift.tar.gz
# is written again with every result file this call wrote and every log, so a call cut short keeps
# what had finished. Set GPU_LIFT_PY to run another Python, and GPU_LIFT_NO_WHEELS=1 to skip
# installing the wheels (a local try on CPU: also GPU_LIFT_DEVICE=cpu).
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
budget=$1
shift
set -f # a run's arguments are split on spaces below, never glob-expanded
tags=()
for spec in "$@"; do
  tag=${spec%%:*}
  for seen in "${tags[@]}"; do
    [ "$seen" = "$tag" ] && echo "error: tag $tag given twice; give each run its own tag" && exit 2
  done
  tags+=("$tag")
done
set +f
py=${GPU_LIFT_PY:-python3}
device=${GPU_LIFT_DEVICE:-cuda}
out=${OUT:-/tmp/gpu_lift_out}
rm -rf /tmp/lift/logs
mkdir -p "$out" /tmp/lift/logs
stamp=/tmp/lift/started
touch "$stamp"
pack() { # every result file written since the start (not the committed ones) and every log
  (cd benchmarks/results && find . -maxdepth 1 -name 'lift_*' -newer "$stamp" -printf '%f\n') >/tmp/lift/new
  tar czf "$out/gpu_lift.tar.gz.tmp" -C benchmarks/results -T /tmp/lift/new -C /tmp/lift logs &&
    mv "$out/gpu_lift.tar.gz.tmp" "$out/gpu_lift.tar.gz"
}
if [ -z "${GPU_LIFT_NO_WHEELS:-}" ]; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
  export KG_ENHANCE_RECBOLE_PYTHON=$py
  export KG_ENHANCE_RECBOLE_ML100K=/tmp/site/recbole/dataset_example/ml-100k
fi
export PYTHONUNBUFFERED=1
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
nproc
ran=()
for spec in "$@"; do
  tag=${spec%%:*}
  args=${spec#*:}
  left=$((budget - ($(date +%s) - started) - 25)) # kept for the kill (10 s) and the archive
  if [ "$left" -le 10 ]; then
    echo "$tag: not started, the budget is spent"
    continue
  fi
  ran+=("$tag")
  echo "started $tag ($left s left): $args"
  set -f
  # shellcheck disable=SC2086 # the run's arguments are split on purpose
  timeout -k 10 "$left" "$py" benchmarks/lift.py --device "$device" --scratch "/tmp/lift/$tag" \
    --data .devdata/movielens --tag "$tag" $args >"/tmp/lift/logs/$tag.log" 2>&1
  code=$?
  set +f
  echo "$tag: exit $code after $(($(date +%s) - started)) s"
  pack
done
for tag in "${ran[@]}"; do
  echo "== $tag (last lines)"
  tail -n 5 "/tmp/lift/logs/$tag.log"
done
tar tzf "$out/gpu_lift.tar.gz"
