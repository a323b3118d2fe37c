"""Kill the extract stage mid-run, run again: nothing completed is lost, nothing is duplicated."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kg_enhance.names import entity_key
from tests.support.helpers import cli, write_job

REPO = Path(__file__).resolve().parents[2]


def cached_items(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT item_id FROM extraction")]
        except sqlite3.OperationalError:
            return []


@pytest.mark.llm
@pytest.mark.neo4j
@pytest.mark.slow
def test_kill_and_resume(neo4j_store, llm_base_url: str, state_home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    n_items = 10
    job = write_job(tmp_path, item_limit=n_items)
    db = state_home / "cache" / "extract.sqlite"
    cmd = [sys.executable, "-m", "kg_enhance.cli", "run", str(job), "--until", "extract", "--no-progress"]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    while len(cached_items(db)) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    early_exit = proc.poll()
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert early_exit is None, f"the first run ended on its own ({early_exit}): {err.decode()[-1000:]}"
    done_before = cached_items(db)
    assert len(done_before) >= 3, "the first run should have cached some items before the kill"

    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())["extract"]
    assert report["cache_hits"] >= len(done_before)
    assert report["extracted"] + report["quarantined"] == n_items
    assert report["llm_calls"] <= (n_items - len(done_before)) * 3
    after = cached_items(db)
    assert len(after) == len(set(after)) == report["extracted"]  # one cache row per item, no duplicates
    assert set(done_before) <= set(after)

    facts = [
        json.loads(line) for line in (tmp_path / "run" / "extract" / "facts.jsonl").read_text().splitlines()
    ]
    keys = [(f["head_id"], f["relation"], entity_key(f["object_type"], f["object"])) for f in facts]
    assert len(keys) == len(set(keys))

    # load twice: the LLM edges in the graph are exactly the distinct facts, once each
    for _ in range(2):
        loaded = cli("run", str(job), "--only", "load", "--no-progress")
        assert loaded.returncode == 0, loaded.stderr[-2000:]
    graph_llm = {t for t in neo4j_store.item_fact_triples(["llm"])}
    assert graph_llm == {(f"item:{h}", r, f"entity:{k}") for h, r, k in keys}
