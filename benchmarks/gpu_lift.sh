#!/usr/bin/env bash
# benchmarks/lift.py runs on the GPU machine, one after another within one wall-clock budget (each
# run is cut at what is left of it).
#
# One at a time, because runs side by side on one GPU time-slice it: ten lift.py runs started
# together there (2026-11-30, H200, 16 cores, 2 torch threads each) finished not one training in
# 530 s, while one run alone trained ml-100k's lightgcn in 14-17 s, kg_hybrid in 65 s and RecBole's
# LightGCN in 93 s (benchmarks/RESULTS.md, "Proof of lift on the GPU machine").
#
# Prepare here first: `bash benchmarks/gpu_prepare.sh` (the project's wheels, RecBole's and the
# MovieLens + HetRec files, in the git-ignored .whl/ and .devdata/); carry both folders.
#
#   bash benchmarks/gpu_lift.sh BUDGET_S "TAG:LIFT ARGS" ["TAG:LIFT ARGS" ...]
#
# Every run gets `--device cuda --scratch /tmp/lift/TAG --data .devdata/movielens --tag TAG` and its
# own log. lift.py writes each seed's rows as they finish (results/lift_*_TAG.partial.jsonl), so a
# run cut at the budget keeps the seeds it finished; read them with `lift.py --from-partial` or
# `--combine`. Everything comes back as one archive, $OUT/gpu_lift.tar.gz. Set GPU_LIFT_PY to run
# another Python, and GPU_LIFT_NO_WHEELS=1 to skip installing the wheels (a local try on CPU: also
# GPU_LIFT_DEVICE=cpu).
set -uo pipefail
cd "$(dirname "$0")/.."
budget=$1
shift
py=${GPU_LIFT_PY:-python3}
device=${GPU_LIFT_DEVICE:-cuda}
out=${OUT:-/tmp/gpu_lift_out}
mkdir -p "$out" /tmp/lift/logs
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
started=$(date +%s)
tags=()
for spec in "$@"; do
  tag=${spec%%:*}
  args=${spec#*:}
  left=$((budget - ($(date +%s) - started)))
  if [ "$left" -le 10 ]; then
    echo "$tag: not started, the budget is spent"
    continue
  fi
  tags+=("$tag")
  echo "started $tag ($left s left): $args"
  # shellcheck disable=SC2086 # the run's arguments are split on purpose
  timeout "$left" "$py" benchmarks/lift.py --device "$device" --scratch "/tmp/lift/$tag" \
    --data .devdata/movielens --tag "$tag" $args >"/tmp/lift/logs/$tag.log" 2>&1
  echo "$tag: exit $? after $(($(date +%s) - started)) s"
done
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null
for tag in "${tags[@]}"; do
  echo "== $tag (last lines)"
  tail -n 5 "/tmp/lift/logs/$tag.log"
done
files=()
for tag in "${tags[@]}"; do
  for f in benchmarks/results/lift_*_"$tag".*; do [ -e "$f" ] && files+=("$f"); done
done
tar czf "$out/gpu_lift.tar.gz" "${files[@]}" -C /tmp/lift logs
ls -la "$out"
