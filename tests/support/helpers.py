"""Helpers shared by the tests (fixtures live in ``tests/conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kg_enhance.config import defaults as D

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
REQUIRE_SERVICES = os.environ.get("KG_ENHANCE_REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"KG_ENHANCE_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def neo4j_uri() -> str:
    return os.environ.get("NEO4J_URI", D.NEO4J_URI)


def llm_url() -> str:
    return os.environ.get("KG_ENHANCE_LLM_URL", D.LLM_BASE_URL)


#: the default job name of :func:`write_job`, hence its graph namespace
JOB_NAME = "t"


def write_job(
    tmp_path: Path,
    *,
    name: str = JOB_NAME,
    item_limit: int = 3,
    extra: str = "",
    llm_enabled: bool = True,
    users: int | None = None,
) -> Path:
    """A small job over the bundled demo data, written next to the test's tmp folder."""
    text = f"""
version: 1
name: {name}
ontology: {REPO / "schemas" / "movies.yaml"}
source:
  items:
    path: "@bundled/movielens_demo/movies.csv"
    id_column: movieId
    title_column: title
    text_fields: [title, genres]
    fact_columns:
      - {{column: genres, relation: HAS_GENRE, object_type: Genre, separator: "|", ignore: ["(no genres listed)"]}}
  users:
    path: "@bundled/movielens_demo/tags.csv"
    id_column: userId
    text_fields: [tag]
  interactions:
    path: "@bundled/movielens_demo/ratings.csv"
    user_column: userId
    item_column: movieId
    rating_column: rating
    timestamp_column: timestamp
    positive_threshold: 4.0
  facts:
    - name: hetrec
      path: "@bundled/movielens_demo/gold_facts.tsv"
llm:
  enabled: {str(llm_enabled).lower()}
  base_url: {llm_url()}
  item_limit: {item_limit}
  max_concurrency: 1
  users: {{enabled: {str(users is not None).lower()}, limit: {users or 1}}}
neo4j:
  uri: {neo4j_uri()}
kge:
  dim: 16
  epochs: 10
recommender:
  epochs: 6
  dim: 16
  models: [{{type: bpr_mf}}, {{type: lightgcn}}, {{type: kg_bpr}}, {{type: kg_lightgcn}}]
outputs:
  dir: {tmp_path / "run"}
{extra}
"""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


def cli(*args: str, timeout: float = 600, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``kg-enhance ARGS`` in a subprocess from the repository root (as a user would); ``input``
    goes to its stdin."""
    return subprocess.run(
        [sys.executable, "-m", "kg_enhance.cli", *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def run_models_in_memory(tmp_path: Path, models: str) -> tuple[Path, Any]:
    """The small demo job with the LLM off, ``recommender.models`` replaced by ``models`` (YAML, and
    any recommender keys after it) and 3 epochs, run whole on the in-memory store; ``(job path,
    api.run_job's result)``."""
    from kg_enhance import api
    from kg_enhance.graph.memory import InMemoryGraphStore

    job = write_job(tmp_path, llm_enabled=False, extra="kge: {dim: 8, epochs: 3}")
    text = job.read_text().replace(
        "models: [{type: bpr_mf}, {type: lightgcn}, {type: kg_bpr}, {type: kg_lightgcn}]", f"models: {models}"
    )
    job.write_text(text.replace("epochs: 6", "epochs: 3"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
        result = api.run_job(
            job, progress=False, store_factory=lambda: InMemoryGraphStore(namespace=JOB_NAME)
        )
    return job, result
