"""Any domain, no interactions: the generated product example, stage skipping, null KGE metrics, validate.

Everything here runs on the in-memory graph store with the LLM turned off; the same job
against the real Neo4j and LLM server is ``tests/integration/test_products_example.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kg_enhance import api
from kg_enhance.datasets.products import PRODUCTS_DIR, write_products
from kg_enhance.errors import ConfigError
from kg_enhance.graph.memory import InMemoryGraphStore
from kg_enhance.pipeline import plan_stages
from tests.support.helpers import cli

REPO = Path(__file__).resolve().parents[2]
PRODUCTS_JOB = REPO / "examples" / "jobs" / "products-demo.yaml"
NO_INTERACTIONS = "the job declares no source.interactions"


def test_the_bundled_product_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    counts = write_products(tmp_path)
    assert counts == {"products": 200, "gold_facts": 969}
    for name in ("products.csv", "gold_facts.tsv"):
        assert (tmp_path / name).read_bytes() == (PRODUCTS_DIR / name).read_bytes(), name
    # every gold name is in its product's description, so text grounding can find it
    import pandas as pd

    products = pd.read_csv(PRODUCTS_DIR / "products.csv", dtype=str).set_index("product_id")
    gold = pd.read_csv(PRODUCTS_DIR / "gold_facts.tsv", sep="\t", dtype=str)
    assert all(
        o in products.loc[i, "description"] for i, o in gold[["item_id", "object"]].itertuples(index=False)
    )


def test_a_job_without_interactions_plans_every_stage_but_recommend_with_the_reason() -> None:
    job = api.validate_job(PRODUCTS_JOB)
    stages, skipped = plan_stages(job=job)
    assert stages == ["extract", "load", "embed", "export"]
    assert list(skipped) == ["recommend"] and NO_INTERACTIONS in skipped["recommend"]
    assert plan_stages(job=job, until="load") == (["extract", "load"], {})  # not asked for: nothing to say
    assert plan_stages(job=job, only=["recommend"])[0] == [
        "recommend"
    ]  # asked for by name: it runs (and fails)


def _run_products(tmp_path: Path, *overrides: str) -> tuple[dict, Path]:
    store = InMemoryGraphStore(namespace="products-demo")
    said: list[str] = []
    result = api.run_job(
        PRODUCTS_JOB,
        overrides=[f"outputs.dir={tmp_path / 'run'}", "llm.enabled=false", "kge.epochs=3", *overrides],
        progress=False,
        echo=said.append,
        store_factory=lambda: store,
    )
    assert [line for line in said if "skipped" in line] == [
        f"[recommend] skipped: {NO_INTERACTIONS}, so there is nothing to train a recommender on (the other stages run without it)"
    ]  # once
    return result.report, tmp_path / "run"


def test_the_product_job_runs_extract_load_embed_export_and_records_why_recommend_was_skipped(
    tmp_path: Path,
) -> None:
    report, run = _run_products(tmp_path)
    statuses = {name: st["status"] for name, st in report["stages"].items()}
    assert statuses == {
        "extract": "ok",
        "load": "ok",
        "embed_text": "skipped",  # text_embeddings is off
        "embed": "ok",
        "recommend": "skipped",
        "export": "ok",
    }
    assert NO_INTERACTIONS in report["stages"]["recommend"]["reason"] and "recommend" not in report
    saved = json.loads((run / "report.json").read_text())
    assert saved["stages"]["recommend"]["reason"] == report["stages"]["recommend"]["reason"]
    assert report["graph"]["items"] == 200 and report["graph"]["interactions_written"] == 0
    # 200 catalog categories + 969 generated gold facts: enough to hold out 10% and evaluate
    assert report["kge"]["triples"] == 1169 and 0 < report["kge"]["metrics"]["mrr"] <= 1
    assert report["export"]["items"] == report["export"]["items_with_vectors"] == 200
    html = api.report(PRODUCTS_JOB, overrides=[f"outputs.dir={run}"]).read_text()
    assert "skipped in this run: the job declares no source.interactions" in html


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        (("kge.test_ratio=0",), "kge.test_ratio is 0"),
        # 25 products and their categories only: each product is in one triple, so none can be held out
        (("source.items.limit=25", "source.facts=[]"), "too sparse to hold out 10%"),
    ],
)
def test_nothing_held_out_gives_null_metrics_with_the_reason_everywhere(
    tmp_path: Path, overrides: tuple[str, ...], why: str
) -> None:
    report, run = _run_products(tmp_path, *overrides)
    kge = report["kge"]
    assert kge["metrics"] == {"mrr": None, "hits@1": None, "hits@3": None, "hits@10": None}
    assert kge["evaluation"].startswith("none: ") and why in kge["evaluation"] and kge["test_triples"] == 0
    assert json.loads((run / "report.json").read_text())["kge"]["metrics"]["mrr"] is None
    html = api.report(PRODUCTS_JOB, overrides=[f"outputs.dir={run}"]).read_text()
    assert "No held-out metrics (MRR and Hits@k are null)" in html and why in html
    assert "1.0000" not in html


def _broken_job(tmp_path: Path) -> Path:
    (tmp_path / "items.csv").write_text("item_id,title,descr\n1,a,b\n")
    (tmp_path / "onto.yaml").write_text(
        "name: t\nentity_types:\n  Person: {description: a person}\n  Brand: {description: a brand}\n"
        "relations:\n  MADE_BY: {description: made by, tail: Brnd}\n"
        "  KNOWS: {description: knows, head: Persn, tail: [Person]}\n"
    )
    job = tmp_path / "job.yaml"
    job.write_text(
        "version: 1\nname: t\nontology: onto.yaml\nsource:\n  items:\n    path: items.csv\n"
        "    title_column: titel\n    text_fields: [title, description]\n"
        "    fact_columns: [{column: brand, relation: MADE_BY, object_type: Brand}]\n"
        "  interactions: {path: ratings.csv}\n  facts: [{name: gold, path: gold.tsv}]\n"
        "kge: {dimz: 3}\nllm: {base_url: '${KG_NOPE_A}', model: '${KG_NOPE_B}'}\n"
    )
    return job


def test_validate_lists_every_problem_at_once_with_suggestions(tmp_path: Path) -> None:
    job = _broken_job(tmp_path)
    with pytest.raises(ConfigError) as info:
        api.validate_job(job)
    lines = str(info.value).splitlines()
    expected = [
        "llm.base_url: environment variable KG_NOPE_A is not set",
        "llm.model: environment variable KG_NOPE_B is not set",
    ]
    assert len(lines) == 2 and all(e in line for e, line in zip(expected, lines, strict=True))
    job.write_text(job.read_text().replace("llm: {base_url: '${KG_NOPE_A}', model: '${KG_NOPE_B}'}\n", ""))
    with pytest.raises(ConfigError) as info:
        api.validate_job(job)
    lines = str(info.value).splitlines()
    expected = [
        f"{job}: kge.dimz: unknown key; did you mean 'dim'?",
        f"{tmp_path / 'onto.yaml'}: relations.MADE_BY.tail: 'Brnd' is not a declared entity type; did you mean 'Brand'?",
        f"{tmp_path / 'onto.yaml'}: relations.KNOWS.head: 'Persn' is neither Item, User nor a declared entity type; "
        "did you mean 'Person'?",
        f"{job}: source.items.title_column: column 'titel' is not in items.csv; did you mean 'title'?",
        f"{job}: source.items.text_fields: column 'description' is not in items.csv; did you mean 'descr'?",
        f"{job}: source.items.fact_columns[0].column: column 'brand' is not in items.csv",
        f"{job}: source.interactions.path: file 'ratings.csv' not found",
        f"{job}: source.facts[0].path: file 'gold.tsv' not found",
    ]
    assert len(lines) == len(expected), lines
    for want, line in zip(expected, lines, strict=True):
        assert line.startswith(want), (want, line)
    # the CLI prints the same, one line per problem, and exits 2
    proc = cli("validate", str(job))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == len(expected)


def test_validate_checks_what_the_job_asks_of_its_ontology_and_sources(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        PRODUCTS_JOB.read_text()
        .replace("../../runs", str(tmp_path))
        .replace("relation: IN_CATEGORY", "relation: IN_CATEGORI")
        .replace("schemas/products.yaml", str(REPO / "schemas" / "products.yaml"))
        + "graph: {compare_sources: [generatd]}\nkge: {sources: [catalog, lm]}\n"
    )
    with pytest.raises(ConfigError) as info:
        api.validate_job(job)
    lines = str(info.value).splitlines()
    assert len(lines) == 3, lines
    assert (
        "graph.compare_sources: 'generatd' is not a source of this job; did you mean 'generated'?" in lines[0]
    )
    assert "kge.sources: 'lm' is not a source of this job; did you mean 'llm'?" in lines[1]
    assert (
        "source.items.fact_columns[0].relation: 'IN_CATEGORI' is not a relation of ontology 'products'; "
        "did you mean 'IN_CATEGORY'?"
    ) in lines[2]


def test_a_misspelt_ontology_file_gets_a_suggestion(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(PRODUCTS_JOB.read_text().replace("schemas/products.yaml", "schemas/product.yaml"))
    with pytest.raises(
        ConfigError, match=r"ontology: file 'schemas/product.yaml' not found .*did you mean 'products.yaml'"
    ):
        api.validate_job(job)
