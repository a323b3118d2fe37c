"""Shared fixtures.

Integration tests use the real local Neo4j and LLM server (``.ci/test.sh`` starts
them on test ports). A test whose service is absent is skipped with the reason, or
*fails* when ``KG_ENHANCE_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kg_enhance.config import defaults as D
from kg_enhance.config.models import Neo4jConfig
from kg_enhance.errors import ServiceUnavailableError

REPO = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="session")
def neo4j_config() -> Neo4jConfig:
    from kg_enhance.graph.store import Neo4jStore

    cfg = Neo4jConfig(uri=neo4j_uri())
    try:
        Neo4jStore(cfg).close()
    except ServiceUnavailableError as e:
        service_missing(f"Neo4j is not reachable: {e}")
    return cfg


@pytest.fixture
def neo4j_store(neo4j_config: Neo4jConfig) -> Iterator[object]:
    """A store on an emptied database (the test database of .ci/test.sh, never the demo one)."""
    from kg_enhance.graph.store import Neo4jStore

    store = Neo4jStore(neo4j_config)
    store.clear()
    yield store
    store.close()


@pytest.fixture(scope="session")
def llm_base_url() -> str:
    url = llm_url()
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=5) as resp:  # noqa: S310 - loopback
            json.loads(resp.read())
    except Exception as e:  # noqa: BLE001
        service_missing(f"the LLM server at {url} is not answering ({type(e).__name__})")
    return url


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KG_ENHANCE_HOME, so caches start empty."""
    home = tmp_path / "state"
    monkeypatch.setenv("KG_ENHANCE_HOME", str(home))
    return home


def write_job(
    tmp_path: Path,
    *,
    name: str = "t",
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
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``kg-enhance ARGS`` in a subprocess from the repository root (as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "kg_enhance.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )
