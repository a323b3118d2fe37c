#!/usr/bin/env bash
# One-time (cached) set-up on a fresh machine: uv, the llama-cpp-python wheel,
# the project's virtual environment, and the Neo4j server jars.
#
# Caches (re-used by every clone on the same machine):
#   ~/.cache/kg-enhance/wheels   llama-cpp-python built once from source (about 6-20 min on 2 cores),
#                                in a folder named by the build's CPU flags (see LLAMA_CMAKE_ARGS below)
#   ~/.cache/uv                  uv's package cache (torch and friends are hard-linked, not re-downloaded)
#   ~/.cache/kg-enhance/neo4j    Neo4j Community jars resolved from Maven Central
# and Debian's chromium (headless browser for the report test) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
CACHE=${KG_ENHANCE_CACHE:-$HOME/.cache/kg-enhance}
WHEELS="$CACHE/wheels"
LLAMA_VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
mkdir -p "$WHEELS" "$CACHE/logs"

log() { printf '[setup] %s\n' "$*" >&2; }

if ! command -v uv >/dev/null 2>&1; then
  log "installing uv"
  "$PY" -m pip install --quiet --user uv || "$PY" -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi

# llama.cpp's default build is -march=native. On a CPU with AMX (Xeon Sapphire Rapids and later) that
# build repacks the Q4_1 weights for AMX and then segfaults on the first completion (seen on this
# project's dev machine, 2026-12-03: the server answers /v1/models, then dies without a word on the
# first chat request). So on x86_64 the wheel is built portable for x86-64-v3 (AVX2, FMA, F16C), which
# also keeps a cached wheel valid when a cache moves to another CPU. Override with LLAMA_CMAKE_ARGS.
if [ "$(uname -m)" = x86_64 ]; then
  LLAMA_CMAKE_ARGS=${LLAMA_CMAKE_ARGS--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}
else
  LLAMA_CMAKE_ARGS=${LLAMA_CMAKE_ARGS-}
fi
# one folder per (version, build flags): a wheel built with other flags is never picked up
LLAMA_VARIANT="llama-cpp-python-$LLAMA_VERSION-$(printf '%s %s' "$(uname -m)" "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)"
LLAMA_WHEELS="$WHEELS/$LLAMA_VARIANT"
if ! ls "$LLAMA_WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  log "building llama-cpp-python $LLAMA_VERSION from source, CMAKE_ARGS='$LLAMA_CMAKE_ARGS' (one time; log in $CACHE/logs/llama-build.log)"
  rm -rf "$LLAMA_WHEELS.tmp"  # what an interrupted build left
  mkdir -p "$LLAMA_WHEELS.tmp"
  # --no-cache-dir: pip's own wheel cache ignores CMAKE_ARGS and would hand back a build with other flags
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} CMAKE_ARGS="$LLAMA_CMAKE_ARGS" \
    "$PY" -m pip wheel --no-cache-dir --no-deps "llama-cpp-python==$LLAMA_VERSION" -w "$LLAMA_WHEELS.tmp" \
    >"$CACHE/logs/llama-build.log" 2>&1 \
    || { log "llama-cpp-python build failed; see $CACHE/logs/llama-build.log (needs gcc, g++, cmake)"; exit 1; }
  rm -rf "$LLAMA_WHEELS"
  mv -T "$LLAMA_WHEELS.tmp" "$LLAMA_WHEELS"  # complete or absent, never half-written
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  uv venv --quiet --python "$PY" .venv
fi
log "installing kg-enhance[dev,local-llm] into .venv"
# --compile-bytecode: write the .pyc files at install time, as pip does. Without them a machine that
# sets PYTHONDONTWRITEBYTECODE (CI images, sandboxes) compiles torch, PyKEEN and pandas again in every
# process: measured 5.5 s against 2.8 s to import kg_enhance.cli, torch and pykeen (2-core dev machine).
# the version pinned here too, so uv never builds a newer llama-cpp-python from PyPI's sdist itself (-march=native)
VIRTUAL_ENV=$PWD/.venv uv pip install --quiet --compile-bytecode --find-links "$LLAMA_WHEELS" -e ".[dev,local-llm]" \
  "llama-cpp-python[server]==$LLAMA_VERSION"
# a .venv made before with another llama-cpp-python build (same version, so uv keeps it): replace it
if [ "$(cat .venv/.llama-variant 2>/dev/null)" != "$LLAMA_VARIANT" ]; then
  log "installing the llama-cpp-python build $LLAMA_VARIANT into .venv"
  VIRTUAL_ENV=$PWD/.venv uv pip install --quiet --compile-bytecode --no-deps --reinstall "$LLAMA_WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
  echo "$LLAMA_VARIANT" > .venv/.llama-variant
fi

# headless Chromium for the report's real-browser test (tests/integration/test_report_browser.py)
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
    log "installing chromium (apt; log in $CACHE/logs/chromium-install.log)"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } \
      >"$CACHE/logs/chromium-install.log" 2>&1 \
      || log "chromium install failed (see the log); the browser test skips, or fails under KG_ENHANCE_REQUIRE_SERVICES=1"
  else
    log "no apt-get: install Chromium yourself for the browser test"
  fi
fi

log "resolving the Neo4j server jars (cached after the first time)"
.venv/bin/python -c "from kg_enhance.services import neo4j; print(neo4j.install())" >/dev/null
log "done"
