"""Crashes and readers: nothing a killed run leaves behind is taken for a result.

* ``kill -9`` of ``kg-enhance run`` in each graph stage, then a re-run: the final graph
  equals a clean run's (namespace fingerprint), and the report names the interrupted run;
* readers of the precomputed top-K during rewrites never see half a file;
* a report never shows figures of stages that did not run in this run;
* run folders, reports and the state folder are private.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.graph.store import Neo4jStore
from kg_enhance.io.files import write_with
from kg_enhance.rec.serve import PrecomputedRecommender
from kg_enhance.rundir import RunDir
from tests.support.helpers import REPO, cli, write_job

SMALL = "\nkge: {dim: 8, epochs: 5}\n"


def _report(run: Path) -> dict[str, object]:
    try:
        return json.loads((run / "report.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _kill_during(job: Path, run: Path, stage: str, *extra: str) -> None:
    """Start a run and SIGKILL it while ``stage`` is running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kg_enhance.cli", "run", str(job), "--no-progress", *extra],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            stages = _report(run).get("stages") or {}
            if isinstance(stages, dict) and (stages.get(stage) or {}).get("status") == "running":
                time.sleep(0.5)  # well inside the stage
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before {stage} could be killed; make it longer"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.neo4j
@pytest.mark.slow
@pytest.mark.parametrize("stage", ["load", "embed", "recommend"])
def test_kill_9_in_a_stage_then_rerun_ends_in_the_clean_graph(
    neo4j_store: Neo4jStore, tmp_path: Path, stage: str
) -> None:
    job = write_job(tmp_path, llm_enabled=False, extra=SMALL)
    run = tmp_path / "run"
    clean = cli("run", str(job), "--until", "recommend", "--no-progress")
    assert clean.returncode == 0, clean.stderr[-2000:]
    expected = graph_fingerprint(neo4j_store).hash
    recommended = neo4j_store.query("MATCH ()-[r:RECOMMENDED]->() RETURN count(r) AS n")[0]["n"]
    neo4j_store.clear()

    _kill_during(job, run, stage, "--set", "neo4j.batch_size=100")
    killed = _report(run)
    assert killed["stages"][stage]["status"] == "running"  # type: ignore[index]
    again = cli("run", str(job), "--until", "recommend", "--no-progress")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "took over the lock" in again.stderr  # the killed run's graph lock was left behind
    report = _report(run)
    assert report["previous_run"] == {"run_id": killed["run_id"], "interrupted_in": [stage]}
    assert all(report["stages"][s]["status"] == "ok" for s in ("extract", "load", "embed", "recommend"))  # type: ignore[index]
    assert graph_fingerprint(neo4j_store).hash == expected
    assert neo4j_store.query("MATCH ()-[r:RECOMMENDED]->() RETURN count(r) AS n")[0]["n"] == recommended


@pytest.mark.neo4j
@pytest.mark.slow
def test_a_partial_run_reports_only_its_own_stages(neo4j_store: Neo4jStore, tmp_path: Path) -> None:
    job = write_job(tmp_path, llm_enabled=False, extra=SMALL)
    full = cli("run", str(job), "--until", "embed", "--no-progress")
    assert full.returncode == 0, full.stderr[-2000:]
    first = _report(tmp_path / "run")
    partial = cli("run", str(job), "--until", "load", "--no-progress")
    assert partial.returncode == 0, partial.stderr[-2000:]
    report = _report(tmp_path / "run")
    assert "kge" not in report and "graph" in report
    embed = report["stages"]["embed"]  # type: ignore[index]
    assert embed == {"status": "skipped", "last_ok_run_id": first["run_id"]}
    assert "kge:" not in partial.stdout and "graph:" in partial.stdout  # the summary shows this run only


def test_readers_never_see_a_half_written_top_k(tmp_path: Path) -> None:
    run = RunDir.at(tmp_path / "run")
    rows = [
        {
            "user_id": str(u),
            "rank": r,
            "item_id": str(r),
            "score": 1.0 / r,
            "model": "m",
            "run": "x",
            "via_items": [],
            "via_entities": [],
        }
        for u in range(2000)
        for r in range(1, 21)
    ]
    table = pd.DataFrame(rows)
    write_with(run.topk, lambda tmp: table.to_parquet(tmp, index=False))
    errors: list[str] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                got = PrecomputedRecommender(run.root)
                assert len(got.table) == 2000 and len(got.recommend("7", 20)) == 20
                reads += 1
            except Exception as e:  # noqa: BLE001 - every failure is what the test counts
                errors.append(f"{type(e).__name__}: {e}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(30):
            write_with(run.topk, lambda tmp: table.to_parquet(tmp, index=False))
    finally:
        stop.set()
        thread.join()
    assert reads > 0 and errors == []


def test_run_folders_reports_and_state_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kg_enhance.paths import state_dir

    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    assert stat.S_IMODE(state_dir().stat().st_mode) == 0o700
    run = RunDir.at(tmp_path / "run")
    run.write_report({"job": "t"})
    assert stat.S_IMODE(run.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(run.report_path.stat().st_mode) == 0o600
    with run.locked({"run_id": "a"}):
        assert stat.S_IMODE(run.lock_path.stat().st_mode) == 0o600


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    run = RunDir.at(tmp_path / "run")
    rows = [
        {
            "user_id": "1",
            "rank": r,
            "item_id": str(r),
            "score": 1.0,
            "model": "m",
            "run": "x",
            "via_items": [],
            "via_entities": [],
        }
        for r in range(1, 21)
    ]
    write_with(run.topk, lambda tmp: pd.DataFrame(rows).to_parquet(tmp, index=False))
    import kg_enhance

    assert len(kg_enhance.recommend("1", 5, run_dir=run.root)) == 5
    for k in (-1, 0):
        with pytest.raises(ValueError, match=f"k must be a whole number >= 1, got {k}"):
            kg_enhance.recommend("1", k, run_dir=run.root)
    job = write_job(tmp_path, llm_enabled=False)
    for where in ("/proc/kg", "/sys/x/y"):
        proc = cli("validate", str(job), "--set", f"outputs.dir={where}")
        assert proc.returncode == 2 and "is inside a system folder" in proc.stderr, proc.stderr
    (tmp_path / "afile").write_text("x")
    proc = cli("validate", str(job), "--set", f"outputs.dir={tmp_path / 'afile' / 'run'}")
    assert proc.returncode == 2 and "cannot be created" in proc.stderr, proc.stderr
