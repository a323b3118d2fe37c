#!/usr/bin/env bash
# Prepare a run of the pipeline on a GPU machine that has PyTorch but neither Neo4j nor a
# package registry (the workplace's H200 machine): the project's dependencies that its image
# lacks, as CPython 3.12 manylinux wheels in .whl/, and the MovieLens + HetRec files that
# benchmarks/scale.py reads, in .devdata/movielens/. Both folders are git-ignored locally
# (.git/info/exclude) and travel with the working tree when named in the run's `carry`; together
# about 39 MB. RecBole 1.2.1 and texttable are for benchmarks/gpu_lift.sh (RecBole's other imports,
# tensorboard, colorama and scikit-learn, are in that machine's image; its ray, thop and plotly are
# not imported by benchmarks/recbole_runner.py).
#
# The versions are those of this project's .venv on 2026-11-30 (pandas too: the image's pandas
# version was not known ahead). Used for benchmarks/results/scale_h200_2026-11-30.txt with:
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
#   python3 benchmarks/scale.py --store memory --device cuda --k 8,16,1 --budget-s 530 \
#       --data .devdata/movielens --scratch /tmp/scale
#
# Usage: bash benchmarks/gpu_prepare.sh   (from the repository root; needs PyPI and ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
for path in /.whl/ /.devdata/; do
  grep -qxF "$path" .git/info/exclude 2>/dev/null || echo "$path" >>.git/info/exclude
done
mkdir -p .whl
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl \
  alembic==1.20.1 annotated-types==0.8.0 backports.zstd==1.8.0 class-resolver==0.8.2 \
  click-default-group==1.2.4 colorlog==6.12.0 dataclasses-json==0.6.7 docdata==0.0.5 \
  httpcore2==2.16.2 httpx2==2.16.2 jiter==0.19.0 mako==1.4.3 marshmallow==3.26.2 more-click==0.1.3 \
  more-itertools==11.2.1 neo4j==6.4.1 openai==3.57.0 optuna==5.0.0 pandas==3.1.1 pydantic==2.14.4 \
  pydantic_core==2.50.5 pykeen==1.11.1 pystow==0.10.3 pytz==2026.6 rapidfuzz==3.14.6 rdflib==7.6.0 \
  sniffio==1.3.1 sqlalchemy==2.1.9 tenacity==9.2.1 torch_max_mem==0.1.6 torch-ppr==0.0.8 \
  truststore==0.10.5 typing-inspection==0.4.5 recbole==1.2.1 texttable==1.7.0
src=../shared/data/movielens
mkdir -p .devdata/movielens
cp -r "$src/ml-latest-small" "$src/hetrec2011-movielens-2k" "$src/SOURCES.md" .devdata/movielens/
du -sh .whl .devdata
