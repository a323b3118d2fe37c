"""Drills an operator would run against a Neo4j that several jobs share (real Neo4j, LLM off).

* two jobs whose item ids overlap never change each other's data or fingerprint;
* the same job started twice at once: one run refuses, naming the holder; nothing is lost;
* two jobs declaring one namespace are serialised by the namespace lock;
* ``neo4j.database`` on Community is a one-line explanation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from kg_enhance.config.models import Neo4jConfig
from kg_enhance.datasets.movielens import DEMO_DIR
from kg_enhance.graph.fingerprint import graph_fingerprint
from kg_enhance.graph.store import Neo4jStore
from tests.support.helpers import REPO, cli, write_job

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

FAST = "\nkge: {dim: 8, epochs: 5}\n"


def _fingerprint(config: Neo4jConfig, namespace: str) -> str:
    with Neo4jStore(config, namespace=namespace) as store:
        return graph_fingerprint(store).hash


def _alt_catalog(folder: Path) -> tuple[Path, Path]:
    """The demo catalog with every title changed, and a gold file with no facts."""
    folder.mkdir(parents=True, exist_ok=True)
    movies = pd.read_csv(DEMO_DIR / "movies.csv", dtype=str)
    movies["title"] = "ALT " + movies["title"]
    movies.to_csv(folder / "movies.csv", index=False)
    (folder / "gold.tsv").write_text("item_id\trelation\tobject\tobject_type\n")
    return folder / "movies.csv", folder / "gold.tsv"


def _alt_job(tmp_path: Path, *, name: str = "alt", extra: str = "") -> Path:
    movies, gold = _alt_catalog(tmp_path / "data")
    job = write_job(tmp_path, name=name, llm_enabled=False, extra=FAST + extra)
    text = job.read_text()
    text = text.replace('"@bundled/movielens_demo/movies.csv"', str(movies))
    text = text.replace('"@bundled/movielens_demo/gold_facts.tsv"', str(gold))
    job.write_text(text)
    return job


def test_two_jobs_with_overlapping_ids_never_change_each_other(
    neo4j_store: Neo4jStore, tmp_path: Path
) -> None:
    demo = write_job(tmp_path / "demo", llm_enabled=False, extra=FAST)
    alt = _alt_job(tmp_path / "alt")
    first = cli("run", str(demo), "--until", "embed", "--no-progress")
    assert first.returncode == 0, first.stderr[-2000:]
    before = _fingerprint(neo4j_store.config, "t")
    title = neo4j_store.query("MATCH (i:Item {ns: 't', item_id: '2'}) RETURN i.title AS t")[0]["t"]
    vector = neo4j_store.query("MATCH (i:Item {ns: 't', item_id: '1'}) RETURN i.embedding AS v")[0]["v"]
    gold = len(neo4j_store.item_fact_triples(["hetrec"]))
    assert gold > 1000 and title == "Jumanji (1995)" and vector

    for _ in range(2):  # the second run of the other job also deletes its (empty-gold) stale facts
        other = cli("run", str(alt), "--until", "embed", "--no-progress")
        assert other.returncode == 0, other.stderr[-2000:]
        assert _fingerprint(neo4j_store.config, "t") == before
    assert neo4j_store.query("MATCH (i:Item {ns: 't', item_id: '2'}) RETURN i.title AS t")[0]["t"] == title
    assert (
        neo4j_store.query("MATCH (i:Item {ns: 't', item_id: '1'}) RETURN i.embedding AS v")[0]["v"] == vector
    )
    assert len(neo4j_store.item_fact_triples(["hetrec"])) == gold
    alt_title = neo4j_store.query("MATCH (i:Item {ns: 'alt', item_id: '2'}) RETURN i.title AS t")[0]["t"]
    assert alt_title == "ALT Jumanji (1995)"
    assert _fingerprint(neo4j_store.config, "alt") != before
    # the CLI's fingerprint is the job's namespace's
    fp = cli("graph", "fingerprint", str(demo), "--json")
    assert fp.returncode == 0 and json.loads(fp.stdout)["fingerprint"] == before


def _start(job: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kg_enhance.cli", "run", str(job), "--until", "load", "--no-progress", *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_same_job_twice_at_once_one_refuses_and_nothing_is_lost(
    neo4j_store: Neo4jStore, tmp_path: Path
) -> None:
    job = write_job(tmp_path, llm_enabled=False)
    clean = cli("run", str(job), "--until", "load", "--no-progress")
    assert clean.returncode == 0, clean.stderr[-2000:]
    expected = _fingerprint(neo4j_store.config, "t")
    neo4j_store.clear()

    runs = [_start(job, "--set", "neo4j.batch_size=200") for _ in range(2)]
    results = [(p.wait(timeout=600), p.communicate()[1]) for p in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 9], results
    refused = next(err for code, err in results if code == 9).strip().splitlines()
    assert len(refused) == 1 and "is in use by" in refused[0] and '"run_id"' in refused[0], refused
    assert _fingerprint(neo4j_store.config, "t") == expected
    assert len(neo4j_store.item_fact_triples(["hetrec"])) > 1000


def test_two_jobs_sharing_a_namespace_take_turns(neo4j_store: Neo4jStore, tmp_path: Path) -> None:
    jobs = [
        write_job(tmp_path / name, name=name, llm_enabled=False, extra="\ngraph: {namespace: shared}\n")
        for name in ("one", "two")
    ]
    runs = [_start(job, "--set", "neo4j.batch_size=200") for job in jobs]
    results = [(p.wait(timeout=600), p.communicate()[1]) for p in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 9], results
    refused = next(err for code, err in results if code == 9).strip().splitlines()
    assert len(refused) == 1 and "namespace 'shared' is locked by run" in refused[0], refused
    # the lock is gone with its holder: the refused job now runs
    loser = jobs[[code for code, _ in results].index(9)]
    again = cli("run", str(loser), "--until", "load", "--no-progress")
    assert again.returncode == 0, again.stderr[-2000:]
    assert neo4j_store.query("MATCH (l:KgLock) RETURN count(l) AS n")[0]["n"] == 0


def test_a_lock_left_by_a_dead_process_is_taken_over(neo4j_store: Neo4jStore, tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    owner = {
        "run_id": "dead-run",
        "job": "t",
        "host": __import__("socket").gethostname(),
        "pid": pid,
        "started": "x",
    }
    neo4j_store.try_lock(owner)
    job = write_job(tmp_path, llm_enabled=False)
    proc = cli("run", str(job), "--until", "load", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "took over the lock of run dead-run" in proc.stderr and f"process {pid}" in proc.stderr
    assert neo4j_store.query("MATCH (l:KgLock) RETURN count(l) AS n")[0]["n"] == 0


def test_a_live_holder_on_another_host_is_respected_until_its_heartbeat_is_stale(
    neo4j_store: Neo4jStore, tmp_path: Path
) -> None:
    owner = {"run_id": "remote-run", "job": "t", "host": "elsewhere", "pid": 1, "started": "x"}
    neo4j_store.try_lock(owner)
    job = write_job(tmp_path, llm_enabled=False)
    proc = cli("run", str(job), "--until", "load", "--no-progress")
    assert proc.returncode == 9 and "is locked by run remote-run" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    old = int(time.time() * 1000) - 3_600_000
    neo4j_store.driver.execute_query("MATCH (l:KgLock {namespace: 't'}) SET l.heartbeat = $old", old=old)
    proc = cli("run", str(job), "--until", "load", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no heartbeat for" in proc.stderr


def test_dropping_one_jobs_graph_leaves_the_other_and_the_next_run_loads_in_full(
    neo4j_store: Neo4jStore, tmp_path: Path
) -> None:
    demo = write_job(tmp_path / "demo", llm_enabled=False, extra=FAST)
    alt = _alt_job(tmp_path / "alt")
    for job in (demo, alt):  # with vectors (and their vector indexes) in the graph
        proc = cli("run", str(job), "--until", "embed", "--no-progress")
        assert proc.returncode == 0, proc.stderr[-2000:]
    loaded, other = _fingerprint(neo4j_store.config, "t"), _fingerprint(neo4j_store.config, "alt")
    with Neo4jStore(neo4j_store.config, namespace="alt") as alt_store:
        alt_totals = alt_store.totals()
    nodes = neo4j_store.totals()["nodes"]
    assert nodes > 300 and alt_totals["edges"] > 1000

    # a run of the job holds its lock (here: a live holder on another host): the drop refuses, nothing goes
    neo4j_store.try_lock({"run_id": "remote-run", "job": "t", "host": "elsewhere", "pid": 1, "started": "x"})
    listed = cli("graph", "namespaces", str(demo), "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = {r["namespace"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {"t", "alt"} and rows["t"]["items"] == rows["alt"]["items"] == 300
    assert sum(rows["t"][k] for k in ("items", "users", "entities", "aliases")) == nodes
    assert rows["t"]["holder"]["run_id"] == "remote-run" and rows["alt"]["holder"] is None
    table = cli("graph", "namespaces", str(demo)).stdout.splitlines()
    assert table[0].split("\t") == ["namespace", "items", "users", "entities", "aliases", "lock"]
    assert table[2].startswith("t\t300\t") and "run remote-run of job 't'" in table[2]
    refused = cli("graph", "drop", str(demo), "--yes")
    assert refused.returncode == 9 and "is locked by run remote-run" in refused.stderr, refused.stderr
    assert refused.stderr.strip().count("\n") == 0
    assert _fingerprint(neo4j_store.config, "t") == loaded
    neo4j_store.release_lock("remote-run")

    # without --yes it asks, and "n" keeps the graph
    kept = cli("graph", "drop", str(demo), input="n\n")
    assert (
        kept.returncode == 1
        and kept.stderr.strip() == "error: graph drop: nothing deleted; namespace 't' kept"
    )
    assert _fingerprint(neo4j_store.config, "t") == loaded

    dropped = cli("graph", "drop", str(demo), "--yes")
    assert dropped.returncode == 0, dropped.stderr[-2000:]
    assert dropped.stdout.strip() == f"deleted {nodes} nodes of namespace 't'", dropped.stdout
    assert neo4j_store.totals()["nodes"] == 0 and neo4j_store.totals()["edges"] == 0
    assert neo4j_store.query("MATCH (l:KgLock) RETURN count(l) AS n")[0]["n"] == 0
    # the other job's graph is as it was
    assert _fingerprint(neo4j_store.config, "alt") == other
    with Neo4jStore(neo4j_store.config, namespace="alt") as alt_store:
        assert alt_store.totals() == alt_totals

    # the run folder still holds the committed state, but the next run sees the graph is gone and loads in full
    again = cli("run", str(demo), "--until", "load", "--no-progress")
    assert again.returncode == 0, again.stderr[-2000:]
    report = json.loads((tmp_path / "demo" / "run" / "report.json").read_text())
    assert "no longer matches" in report["graph"]["refresh"]["reason"], report["graph"]["refresh"]
    assert _fingerprint(neo4j_store.config, "t") == loaded


def test_a_namespace_whose_entities_other_jobs_share_is_dropped_only_with_force(
    neo4j_store: Neo4jStore, tmp_path: Path
) -> None:
    # job "b" keeps its entities in job "t"'s namespace (graph.entity_namespace): its facts point at them
    owner = write_job(tmp_path / "t", llm_enabled=False, extra=FAST)
    sharer = _alt_job(tmp_path / "b", name="b", extra="\ngraph: {entity_namespace: t}\n")
    for job in (owner, sharer):
        proc = cli("run", str(job), "--until", "load", "--no-progress")
        assert proc.returncode == 0, proc.stderr[-2000:]
    shared_facts = "MATCH (i:Item {ns: 'b'})-->(e:Entity {ns: 't'}) RETURN count(*) AS n"
    before = neo4j_store.query(shared_facts)[0]["n"]
    assert before > 300  # the catalog's genres of "b", resolved into "t"'s entities
    loaded = _fingerprint(neo4j_store.config, "t")

    refused = cli("graph", "drop", str(owner), "--yes")
    assert refused.returncode == 6, refused.stderr
    line = refused.stderr.strip()
    assert line.count("\n") == 0 and "namespace(s) 'b' point at its entities" in line and "--force" in line
    assert (
        _fingerprint(neo4j_store.config, "t") == loaded and neo4j_store.query(shared_facts)[0]["n"] == before
    )

    # dropping the sharer is fine: its entity namespace is not its own, and stays
    dropped = cli("graph", "drop", str(sharer), "--yes")
    assert dropped.returncode == 0, dropped.stderr[-2000:]
    assert "shared entity namespace 't' kept" in dropped.stdout
    assert neo4j_store.query(shared_facts)[0]["n"] == 0 and _fingerprint(neo4j_store.config, "t") == loaded
    again = cli("run", str(sharer), "--until", "load", "--no-progress")
    assert again.returncode == 0 and neo4j_store.query(shared_facts)[0]["n"] == before

    forced = cli("graph", "drop", str(owner), "--yes", "--force")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert neo4j_store.totals()["nodes"] == 0 and neo4j_store.query(shared_facts)[0]["n"] == 0
    assert neo4j_store.query("MATCH (i:Item {ns: 'b'}) RETURN count(i) AS n")[0]["n"] == 300


def test_a_database_community_does_not_have_is_one_line(neo4j_store: Neo4jStore, tmp_path: Path) -> None:
    job = write_job(tmp_path, llm_enabled=False)
    proc = cli("run", str(job), "--until", "load", "--no-progress", "--set", "neo4j.database=movies")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "Neo4j Community has one user database" in lines[0]
        and "graph.namespace" in lines[0]
    )
