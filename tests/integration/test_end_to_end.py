"""The whole pipeline on the bundled data against the real services."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import kg_enhance
from tests.conftest import cli, write_job

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.neo4j
@pytest.mark.llm
@pytest.mark.slow
def test_run_job_end_to_end(neo4j_store, llm_base_url: str, state_home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = write_job(tmp_path, item_limit=4, users=3)
    proc = cli("run", str(job), "--no-progress", timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    for stage in ("extract", "load", "embed", "recommend", "export"):
        assert report["stages"][stage]["seconds"] > 0 or stage == "export"
        assert report["stages"][stage]["status"] == "ok"
    ex = report["extract"]
    assert ex["items"] == 4 and ex["llm_calls"] >= 4 and ex["cache_hits"] == 0
    assert ex["extracted"] + ex["quarantined"] == 4 and ex["tokens"] > 0
    # user-side knowledge: 3 taggers, each extracted or quarantined; PREFERS edges match the facts file
    users = ex["users"]
    assert users["items"] == 3 and users["extracted"] + users["quarantined"] == 3
    facts = [json.loads(line) for line in (tmp_path / "run" / "extract" / "facts.jsonl").open()]
    user_facts = {(f["head_id"], f["object_type"], f["object"]) for f in facts if f["head_kind"] == "User"}
    assert all(f["relation"] == "PREFERS" for f in facts if f["head_kind"] == "User")
    assert report["graph"]["user_facts_written"] == len(user_facts)
    prefers = neo4j_store._read("MATCH (:User)-[r:PREFERS {source: 'llm'}]->(:Entity) RETURN count(r) AS n")
    assert prefers[0]["n"] == len(user_facts)
    listing = cli("quarantine", str(job))
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0] == f"{ex['quarantined'] + users['quarantined']} quarantined"
    g = report["graph"]
    assert g["items"] == 300 and g["items_with_facts"] == 300  # every demo movie has catalog genres
    assert g["edges"] > g["nodes"] > 300
    assert set(report["kge"]["metrics"]) == {"mrr", "hits@1", "hits@3", "hits@10"}
    assert 0 < report["kge"]["metrics"]["mrr"] <= 1
    for model in ("bpr_mf", "kg_bpr"):
        test = report["recommend"][model]["test"]
        assert 0 <= test["recall@20"] <= 1 and 0 <= test["ndcg@20"] <= 1
    # even 6 epochs of BPR beat random ranking (Recall@20 of about 20/300 = 0.067) clearly
    assert report["recommend"]["bpr_mf"]["test"]["recall@20"] > 1.5 * 20 / 300

    emb = kg_enhance.load_embeddings(tmp_path / "run")
    assert emb.entity_vectors.shape == (len(emb.entity_to_id), 16)
    assert sorted(emb.entity_to_id.values()) == list(range(len(emb.entity_to_id)))
    assert emb.metadata["graph_fingerprint"]
    ids = json.loads((tmp_path / "run" / "export" / "item_ids.json").read_text())
    vectors = np.load(tmp_path / "run" / "export" / "item_vectors.npy")
    assert vectors.shape == (300, 16) and len(ids) == 300
    assert np.allclose(vectors[ids.index("1")], emb.vector("item:1"))

    # a second run of extract is served entirely from the cache
    again = cli("run", str(job), "--only", "extract", "--no-progress", timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    report2 = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report2["extract"]["llm_calls"] == report["extract"]["quarantined"] * 3
    assert report2["extract"]["cache_hits"] == report["extract"]["extracted"]
    assert report2["extract"]["users"]["cache_hits"] == users["extracted"]

    out = tmp_path / "exported"
    exp = cli("export", str(job), "--format", "parquet", "--out", str(out), timeout=300)
    assert exp.returncode == 0, exp.stderr
    assert (out / "entity_vectors.parquet").exists() and (out / "entity_to_id.json").exists()


@pytest.mark.neo4j
def test_load_without_extract_output_says_what_to_run(neo4j_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = write_job(tmp_path)
    proc = cli("run", str(job), "--only", "load", "--no-progress", timeout=300)
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "run the extract stage first" in err[0]


def test_unreachable_llm_is_a_one_line_error(tmp_path: Path, state_home: Path) -> None:
    job = write_job(tmp_path, extra="")
    text = job.read_text().replace("base_url:", "max_retries: 1\n  base_url: http://127.0.0.1:9/v1\n  #", 1)
    job.write_text(text)
    proc = cli(
        "run",
        str(job),
        "--until",
        "extract",
        "--no-progress",
        "--set",
        "llm.structured_output=json_object",
        timeout=300,
    )
    assert proc.returncode == 7
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "unreachable" in err[0] and "kg-enhance llm serve" in err[0]
