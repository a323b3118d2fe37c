"""The non-movie example end to end against the real services: a generated product catalog, its own
ontology, `text` grounding, no interactions (examples/jobs/products-demo.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kg_enhance.config.models import Neo4jConfig
from kg_enhance.datasets.products import PRODUCTS_DIR
from kg_enhance.graph.store import Neo4jStore
from kg_enhance.names import normalise_name
from tests.support.helpers import cli

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "examples" / "jobs" / "products-demo.yaml"
ITEMS = 4


@pytest.mark.neo4j
@pytest.mark.llm
@pytest.mark.slow
def test_product_catalog_without_interactions_runs_end_to_end(
    neo4j_config: Neo4jConfig, llm_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))  # empty cache: the LLM is really asked
    monkeypatch.setenv("KG_ENHANCE_LLM_URL", llm_base_url)
    monkeypatch.setenv("NEO4J_URI", neo4j_config.uri)
    store = Neo4jStore(neo4j_config, namespace="products-demo")
    store.clear()
    try:
        proc = cli(
            "run",
            str(JOB),
            "--no-progress",
            "--set",
            f"outputs.dir={tmp_path / 'run'}",
            "--set",
            f"llm.item_limit={ITEMS}",
            "--set",
            "kge.epochs=5",
            "--set",
            "llm.call_deadline_s=600",  # a shared 2-core machine can take minutes per call
            timeout=1500,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = proc.stdout
        assert (
            out.count("skipped") == 1
            and "[recommend] skipped: the job declares no source.interactions" in out
        )
        report = json.loads((tmp_path / "run" / "report.json").read_text())
        statuses = {name: st["status"] for name, st in report["stages"].items()}
        assert statuses == {
            "extract": "ok",
            "load": "ok",
            "embed_text": "skipped",  # text_embeddings is off
            "embed": "ok",
            "recommend": "skipped",
            "export": "ok",
        }

        ex = report["extract"]
        assert (
            ex["items"] == ITEMS and ex["extracted"] + ex["quarantined"] == ITEMS and ex["llm_calls"] >= ITEMS
        )
        # every kept LLM name appears in its product's text (grounding: text), and no drop is unexplained
        products = pd.read_csv(PRODUCTS_DIR / "products.csv", dtype=str).set_index("product_id")
        facts = [json.loads(line) for line in (tmp_path / "run" / "extract" / "facts.jsonl").open()]
        for f in facts:
            text = normalise_name(
                f"{products.loc[f['head_id'], 'title']} {products.loc[f['head_id'], 'description']}"
            )
            assert f" {normalise_name(f['object'])} " in f" {text} ", f
        assert (
            sum(ex["dropped_by_reason"].values()) == ex["dropped_facts"]
            and "other" not in ex["dropped_by_reason"]
        )
        # the quality report scores against the generated gold facts of exactly the extracted products
        gold = pd.read_csv(PRODUCTS_DIR / "gold_facts.tsv", sep="\t", dtype=str)
        extracted = json.loads((tmp_path / "run" / "extract" / "extracted_ids.json").read_text())["items"]
        q = report["extract"]["quality"]["generated"]
        assert q["overall"]["gold_facts"] == int(gold["item_id"].isin(extracted).sum())
        assert set(q["by_relation"]) == {"MADE_BY", "HAS_COLOUR", "MADE_OF", "SUITED_FOR"} or not extracted
        assert q["overall"]["llm_facts"] + q["unchecked_llm_facts"] == len(
            {(f["head_id"], f["relation"], normalise_name(f["object"]), f["object_type"]) for f in facts}
        )
        assert "extract vs generated: precision" in out
        html = cli("report", str(JOB), "--set", f"outputs.dir={tmp_path / 'run'}")
        assert html.returncode == 0, html.stderr
        page = (tmp_path / "run" / "report.html").read_text()
        assert "Extracted item facts against generated" in page
        assert "skipped in this run: the job declares no source.interactions" in page

        g = report["graph"]
        assert g["items"] == 200 and g["items_with_facts"] == 200 and g["interactions_written"] == 0
        assert g["nodes_by_label"].get("User", 0) == 0
        made_by = store.query(
            "MATCH (i:Item {ns: $ns})-[r:MADE_BY {source: 'generated'}]->(:Entity) RETURN count(r) AS n",
            ns="products-demo",
        )
        assert made_by[0]["n"] == 200
        assert 0 < report["kge"]["metrics"]["mrr"] <= 1 and report["kge"]["test_triples"] > 0
        vectors = np.load(tmp_path / "run" / "export" / "item_vectors.npy")
        ids = json.loads((tmp_path / "run" / "export" / "item_ids.json").read_text())
        assert vectors.shape == (200, 32) and ids[0] == "P0001" and np.abs(vectors).sum(axis=1).min() > 0
    finally:
        store.close()
