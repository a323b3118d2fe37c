"""Shared fixtures.

Integration tests use the real local Neo4j and LLM server (``.ci/test.sh`` starts
them on test ports). A test whose service is absent is skipped with the reason, or
*fails* when ``KG_ENHANCE_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kg_enhance.config.models import Neo4jConfig
from kg_enhance.errors import ServiceUnavailableError
from kg_enhance.graph.store import Neo4jStore
from tests.support.helpers import JOB_NAME, llm_url, neo4j_uri, service_missing


@pytest.fixture(scope="session")
def neo4j_config() -> Neo4jConfig:
    cfg = Neo4jConfig(uri=neo4j_uri())
    try:
        Neo4jStore(cfg).close()
    except ServiceUnavailableError as e:
        service_missing(f"Neo4j is not reachable: {e}")
    return cfg


@pytest.fixture
def neo4j_store(neo4j_config: Neo4jConfig) -> Iterator[Neo4jStore]:
    """A store on an emptied database (the test database of .ci/test.sh, never the demo one),
    in the namespace of ``write_job``'s default job (``t``)."""
    store = Neo4jStore(neo4j_config, namespace=JOB_NAME)
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
