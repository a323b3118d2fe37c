"""The whole pipeline on the bundled data against the real services."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kg_enhance
from tests.support.helpers import JOB_NAME, cli, write_job

REPO = Path(__file__).resolve().parents[2]


@dataclass
class DemoRun:
    job: Path
    run: Path
    report: dict[str, Any]
    store: Any


@pytest.fixture(scope="module")
def demo(neo4j_config, llm_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:  # type: ignore[no-untyped-def]
    """One full pipeline run over the bundled data (4 LLM items, 3 taggers), shared by this module's tests."""
    from kg_enhance.graph.store import Neo4jStore

    tmp_path = tmp_path_factory.mktemp("demo")
    store = Neo4jStore(neo4j_config, namespace=JOB_NAME)
    store.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
        job = write_job(tmp_path, item_limit=4, users=3)
        proc = cli("run", str(job), "--no-progress", timeout=900)
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = json.loads((tmp_path / "run" / "report.json").read_text())
        yield DemoRun(job=job, run=tmp_path / "run", report=report, store=store)
    store.close()


@pytest.mark.neo4j
@pytest.mark.llm
@pytest.mark.slow
def test_run_job_end_to_end(demo: DemoRun) -> None:
    job, report, tmp_path, neo4j_store = demo.job, demo.report, demo.job.parent, demo.store
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
    prefers = neo4j_store.query("MATCH (:User)-[r:PREFERS {source: 'llm'}]->(:Entity) RETURN count(r) AS n")
    assert prefers[0]["n"] == len(user_facts)
    listing = cli("quarantine", str(job))
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0] == f"{ex['quarantined'] + users['quarantined']} quarantined"
    g = report["graph"]
    assert g["items"] == 300 and g["items_with_facts"] == 300  # every demo movie has catalog genres
    assert g["edges"] > g["nodes"] > 300
    assert set(report["kge"]["metrics"]) == {"mrr", "hits@1", "hits@3", "hits@10"}
    assert 0 < report["kge"]["metrics"]["mrr"] <= 1
    for model in ("bpr_mf", "lightgcn", "kg_bpr", "kg_lightgcn"):
        test = report["recommend"][model]["test"]
        assert 0 <= test["recall@20"] <= 1 and 0 <= test["ndcg@20"] <= 1
        assert set(report["recommend"][model]["slices"]) == {"long_tail", "few_interactions"}
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

    # a second run of extract asks about nothing: no subject changed since the load (incremental refresh)
    same = cli("run", str(job), "--only", "extract", "--no-progress", timeout=300)
    assert same.returncode == 0, same.stderr[-2000:]
    unchanged = json.loads((tmp_path / "run" / "report.json").read_text())
    assert unchanged["extract"]["delta_mode"] == "incremental" and unchanged["extract"]["llm_calls"] == 0
    # and with --full it goes over every subject, served entirely from the cache
    again = cli("run", str(job), "--only", "extract", "--full", "--no-progress", timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    report2 = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report2["extract"]["llm_calls"] == report["extract"]["quarantined"] * 3
    assert report2["extract"]["cache_hits"] == report["extract"]["extracted"]
    assert report2["extract"]["users"]["cache_hits"] == users["extracted"]

    out = tmp_path / "exported"
    exp = cli("export", str(job), "--format", "parquet", "--out", str(out), timeout=300)
    assert exp.returncode == 0, exp.stderr
    assert (out / "entity_vectors.parquet").exists() and (out / "entity_to_id.json").exists()


BROWSER_PARAMS: dict[str, dict[str, Any]] = {
    "item_facts": {"item_id": "1"},
    "item_neighbourhood": {"item_id": "1"},
    "items_sharing_entities": {"item_id": "1"},
    "hub_entities": {},
    "fact_provenance": {"item_id": "1", "entity": "John Lasseter"},
    "quality_items_without_facts": {"source": "llm"},
    "quality_orphan_entities": {},
    "quality_likely_duplicates": {},
    "nearest_items_by_embedding": {"item_id": "1"},
    # rows only when text_embeddings ran (not in the demo): checked in test_text_embeddings_services.py
    "nearest_items_by_text": {"item_id": "1"},
    "why_recommended": {"user_id": None, "item_id": None},  # user filled in from the graph
}


@pytest.mark.neo4j
@pytest.mark.llm
@pytest.mark.slow
def test_every_browser_query_returns_rows_on_the_demo_graph(demo: DemoRun) -> None:
    names = sorted(p.stem for p in (REPO / "cypher" / "browser").glob("*.cypher"))
    assert names == sorted(BROWSER_PARAMS), "add the new Browser query to BROWSER_PARAMS"
    some_user = demo.store.query("MATCH (u:User)-[:RECOMMENDED]->() RETURN u.user_id AS u LIMIT 1")[0]["u"]
    for name, params in BROWSER_PARAMS.items():
        if name == "why_recommended":
            params = {**params, "user_id": some_user}
        rows = demo.store.run_statement(f"browser/{name}", **params)
        if name == "nearest_items_by_text":
            assert rows == []  # the demo embeds no text: the query runs and finds nothing
            continue
        assert rows, name
    provenance = demo.store.run_statement("browser/fact_provenance", **BROWSER_PARAMS["fact_provenance"])
    assert {r["source"] for r in provenance} >= {"hetrec"} and all(r["run_id"] for r in provenance)
    orphans = demo.store.run_statement("browser/quality_orphan_entities")
    assert any(r["entity"] == "Documentary" and r["from_vocabulary"] for r in orphans)  # seeded, unused
    nearest = demo.store.run_statement("browser/nearest_items_by_embedding", item_id="1")
    assert len(nearest) == 10 and all(r["item_id"] != "1" for r in nearest)
    assert [r["cosine"] for r in nearest] == sorted((r["cosine"] for r in nearest), reverse=True)


@pytest.mark.neo4j
@pytest.mark.llm
@pytest.mark.slow
def test_precomputed_top_k_is_served_with_explanations(demo: DemoRun) -> None:
    import pandas as pd

    rec = demo.report["recommend"]
    k = rec["k"]
    table = pd.read_parquet(demo.run / "recommend" / "topk.parquet")
    assert len(table) == rec["split"]["users"] * k == rec["serving"]["recommended_edges"]
    assert set(table["model"]) == {rec["best_model"]}
    edges = demo.store.query(
        "MATCH (:User)-[r:RECOMMENDED]->(:Item) RETURN count(r) AS n, count(DISTINCT r.run) AS runs"
    )
    assert edges[0]["n"] == len(table) and edges[0]["runs"] == 1
    user = str(table["user_id"].iloc[0])
    got = kg_enhance.recommend(user, 5, run_dir=demo.run)
    expected = table[table["user_id"] == user].sort_values("rank").head(5)
    assert [r.item_id for r in got] == expected["item_id"].tolist() and [r.rank for r in got] == [
        1,
        2,
        3,
        4,
        5,
    ]
    # explanation paths are real graph paths: the user interacted with the via item, both share the entity
    explained = [(r, b) for r in kg_enhance.recommend(user, k, run_dir=demo.run) for b in r.because]
    assert rec["serving"]["explained_share"] > 0 and explained
    for r, (via_item, entity) in explained[:5]:
        path = demo.store.query(
            "MATCH (:User {user_id: $u})-[:INTERACTED]->(:Item {item_id: $j})-->(:Entity {key: $e})<--(:Item {item_id: $i}) "
            "RETURN count(*) AS n",
            u=user,
            j=via_item,
            e=entity,
            i=r.item_id,
        )
        assert path[0]["n"] >= 1
    why = demo.store.run_statement("browser/why_recommended", user_id=user, item_id=None)
    assert [row["item_id"] for row in why[:5]] == expected["item_id"].tolist()
    listing = cli("recommend", str(demo.job), user, "-k", "3")
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 3
    with pytest.raises(KeyError, match="no precomputed recommendations"):
        kg_enhance.recommend("no-such-user", 5, run_dir=demo.run)


@pytest.mark.neo4j
@pytest.mark.llm
@pytest.mark.slow
def test_interactions_from_neo4j_give_the_same_split_and_recbole_files(demo: DemoRun) -> None:
    import numpy as np

    from kg_enhance.stages.recommend import recommend_split

    job = kg_enhance.validate_job(demo.job)
    from_files = recommend_split(job)
    from_graph = recommend_split(
        job.model_copy(update={"recommender": job.recommender.model_copy(update={"interactions": "neo4j"})}),
        demo.store,
    )
    assert from_graph.user_ids == from_files.user_ids and from_graph.item_ids == from_files.item_ids
    for part in ("train", "valid", "test"):
        assert np.array_equal(getattr(from_graph, part), getattr(from_files, part))
    out = demo.job.parent / "recbole"
    proc = cli("export-recbole", str(demo.job), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    folder = out / "t"
    test_lines = (folder / "t.test.inter").read_text().splitlines()
    assert (
        test_lines[0] == "user_id:token\titem_id:token\tlabel:float"
        and len(test_lines) == len(from_files.test) + 1
    )
    kg_lines = (folder / "t.kg").read_text().splitlines()
    assert len(kg_lines) - 1 == len(set(demo.store.item_fact_triples(None)))
    assert (folder / "t.link").exists() and "benchmark_filename: [train, valid, test]" in (
        folder / "t.yaml"
    ).read_text()


@pytest.mark.neo4j
@pytest.mark.llm
@pytest.mark.slow
def test_ablation_in_one_command(demo: DemoRun) -> None:
    proc = cli("ablate", str(demo.job), "--no-progress", timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((demo.run / "report.json").read_text())
    rows = {r["variant"]: r for r in report["ablation"]["rows"]}
    assert list(rows) == ["no_kg", "gold", "llm", "gold+llm"]
    assert rows["no_kg"]["kg_triples"] == 0 and rows["gold"]["kg_triples"] > 1000
    for name in ("no_kg", "gold", "gold+llm"):
        assert 0 < rows[name]["ndcg@20"] <= 1 and "long_tail_ndcg@20" in rows[name]
    # 4 LLM items give too few facts to embed alone: reported, not hidden
    assert "skipped" in rows["llm"] or rows["llm"]["kg_triples"] >= 20
    assert rows["gold+llm"]["kg_triples"] >= rows["gold"]["kg_triples"]
    assert (demo.run / "ablation" / "ablation.png").stat().st_size > 5000


@pytest.mark.neo4j
@pytest.mark.llm
@pytest.mark.slow
def test_graph_report_and_idempotent_reload(demo: DemoRun) -> None:
    g = demo.report["graph"]
    assert g["degrees"]["items_per_entity"]["count"] == g["nodes_by_label"]["Entity"]
    assert g["degrees"]["entities_per_item"]["zero"] == 0
    assert isinstance(g["duplicate_candidates"], int)
    assert set(g["resolution"]["by_reason"]) <= {"entity", "alias", "fuzzy", "new"}
    gold = g["llm_vs_gold"]["hetrec"]
    assert set(gold) == {"DIRECTED_BY", "HAS_GENRE", "PRODUCED_IN", "overall"}
    assert gold["overall"]["items"] == demo.report["extract"]["extracted"]
    for rel in ("DIRECTED_BY", "HAS_GENRE", "PRODUCED_IN"):
        row = gold[rel]
        assert 0 <= row["matched"] <= min(row["llm_facts"], row["gold_facts"]) and 0 <= row["recall"] <= 1
    before = cli("graph", "fingerprint", str(demo.job), "--json")
    assert before.returncode == 0, before.stderr
    reload = cli("run", str(demo.job), "--only", "load", "--no-progress")
    assert reload.returncode == 0, reload.stderr[-2000:]
    after = cli("graph", "fingerprint", str(demo.job), "--json")
    assert json.loads(after.stdout) == json.loads(before.stdout)
    emb = kg_enhance.load_embeddings(demo.run, job=demo.job)  # still the graph it was trained on
    assert emb.metadata["graph_fingerprint"] == json.loads(before.stdout)["fingerprint"]
    vectors = demo.store.query("MATCH (i:Item) WHERE i.embedding IS NOT NULL RETURN count(i) AS n")
    assert vectors[0]["n"] == sum(1 for k in emb.entity_to_id if k.startswith("item:"))
    one = demo.store.query("MATCH (i:Item {item_id: '1'}) RETURN i.embedding AS v, i.embedding_model AS m")[0]
    assert np.allclose(one["v"], emb.vector("item:1"), atol=1e-6) and one["m"] == emb.metadata["model"]


@pytest.mark.neo4j
@pytest.mark.llm
@pytest.mark.slow
def test_rdf_export_reimports_as_a_named_source_and_stale_embeddings_are_refused(demo: DemoRun) -> None:
    ttl = demo.job.parent / "hetrec.ttl"
    exported = cli("graph", "export-rdf", str(demo.job), "--out", str(ttl), "--source", "hetrec")
    assert exported.returncode == 0, exported.stderr
    nt = demo.job.parent / "hetrec.nt"
    assert cli("graph", "export-rdf", str(demo.job), "--out", str(nt), "--format", "ntriples").returncode == 0
    text = demo.job.read_text().replace(
        "  facts:\n", f"  facts:\n    - {{name: hetrec_rdf, path: {ttl}}}\n", 1
    )
    demo.job.write_text(text)
    loaded = cli("run", str(demo.job), "--only", "load", "--no-progress")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert demo.store.item_fact_triples(["hetrec_rdf"]) == demo.store.item_fact_triples(["hetrec"])
    names = demo.store.query(
        "MATCH (:Item {item_id: '1'})-[r:DIRECTED_BY {source: 'hetrec_rdf'}]->(e) RETURN e.name AS name"
    )
    assert [r["name"] for r in names] == ["John Lasseter"]
    # the graph changed, so the embeddings no longer describe it
    with pytest.raises(kg_enhance.KgEnhanceError, match="re-run the embed stage"):
        kg_enhance.load_embeddings(demo.run, job=demo.job)
    refused = cli("export", str(demo.job), "--out", str(demo.job.parent / "exp"))
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert "re-run the embed stage" in refused.stderr


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
    assert len(err) == 1 and "connection refused" in err[0] and "kg-enhance llm serve" in err[0]
