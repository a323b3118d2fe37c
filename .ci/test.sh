#!/usr/bin/env bash
# Runs the test suite against real services started here, on their own ports and
# state folder (so a developer's demo database is never touched), and stops them after.
# KG_ENHANCE_REQUIRE_SERVICES=1 turns a missing service into a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh

export KG_ENHANCE_HOME=${KG_ENHANCE_TEST_HOME:-$PWD/.kg-enhance/test-home}
export KG_ENHANCE_NEO4J_BOLT_PORT=${KG_ENHANCE_NEO4J_BOLT_PORT:-7688}
export KG_ENHANCE_NEO4J_HTTP_PORT=${KG_ENHANCE_NEO4J_HTTP_PORT:-7475}
export KG_ENHANCE_LLM_PORT=${KG_ENHANCE_LLM_PORT:-8089}
export NEO4J_URI=bolt://127.0.0.1:$KG_ENHANCE_NEO4J_BOLT_PORT
export KG_ENHANCE_LLM_URL=http://127.0.0.1:$KG_ENHANCE_LLM_PORT/v1
KG=.venv/bin/kg-enhance

started=()
cleanup() {
  for svc in "${started[@]}"; do
    if [ "$svc" = neo4j ]; then $KG neo4j stop || true; else $KG llm stop || true; fi
  done
}
trap cleanup EXIT

if ! $KG neo4j status >/dev/null 2>&1; then
  $KG neo4j start && started+=(neo4j) || echo "[test] neo4j did not start; its tests will skip (or fail under KG_ENHANCE_REQUIRE_SERVICES=1)" >&2
fi
if ! $KG llm status >/dev/null 2>&1; then
  $KG llm serve && started+=(llm) || echo "[test] llm server did not start; its tests will skip (or fail under KG_ENHANCE_REQUIRE_SERVICES=1)" >&2
fi

rc=0
.venv/bin/python -m pytest "$@" || rc=$?
if [ "$rc" -ne 0 ]; then
  # what the services said, so a CI log shows a server that died mid-run (a crash leaves no other trace)
  echo "[test] pytest exited $rc; the services now:" >&2
  $KG neo4j status >&2 || true
  $KG llm status >&2 || true
  echo "[test] last lines of $KG_ENHANCE_HOME/llm/server.log:" >&2
  tail -n 15 "$KG_ENHANCE_HOME/llm/server.log" >&2 2>/dev/null || true
  echo "[test] last lines of the test Neo4j's neo4j.log:" >&2
  tail -n 15 "$KG_ENHANCE_HOME/neo4j/home/logs/neo4j.log" >&2 2>/dev/null || true
fi
exit "$rc"
