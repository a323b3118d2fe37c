#!/usr/bin/env bash
# One-time (cached) set-up on a fresh machine: uv, the llama-cpp-python wheel,
# the project's virtual environment, and the Neo4j server jars.
#
# Caches (re-used by every clone on the same machine):
#   ~/.cache/kg-enhance/wheels   llama-cpp-python built once from source (about 6-20 min on 2 cores)
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

if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  log "building llama-cpp-python $LLAMA_VERSION from source (one time; log in $CACHE/logs/llama-build.log)"
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
    "$PY" -m pip wheel --no-deps "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS" >"$CACHE/logs/llama-build.log" 2>&1 \
    || { log "llama-cpp-python build failed; see $CACHE/logs/llama-build.log (needs gcc, g++, cmake)"; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  uv venv --quiet --python "$PY" .venv
fi
log "installing kg-enhance[dev,local-llm] into .venv"
# --compile-bytecode: write the .pyc files at install time, as pip does. Without them a machine that
# sets PYTHONDONTWRITEBYTECODE (CI images, sandboxes) compiles torch, PyKEEN and pandas again in every
# process: measured 5.5 s against 2.8 s to import kg_enhance.cli, torch and pykeen (2-core dev machine).
VIRTUAL_ENV=$PWD/.venv uv pip install --quiet --compile-bytecode --find-links "$WHEELS" -e ".[dev,local-llm]"

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
