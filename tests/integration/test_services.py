"""The project's own service commands: start, stop and status stay truthful."""

from __future__ import annotations

import pytest

from kg_enhance.services import llm, neo4j
from tests.support.helpers import cli, service_missing


@pytest.mark.neo4j
@pytest.mark.slow
def test_neo4j_stop_start_status_truthful(neo4j_config: object) -> None:
    if not neo4j.status().running:
        service_missing("the reachable Neo4j is not the project-managed one; cannot test stop/start")
    stopped = cli("neo4j", "stop")
    assert stopped.returncode == 0, stopped.stderr
    st = cli("neo4j", "status")
    assert st.returncode == 3 and "stopped" in st.stdout and "bolt" in st.stdout and "down" in st.stdout
    started = cli("neo4j", "start")
    assert started.returncode == 0, started.stderr
    st = cli("neo4j", "status")
    assert st.returncode == 0 and "running" in st.stdout and "up" in st.stdout
    again = cli("neo4j", "start")  # idempotent
    assert again.returncode == 0 and "running" in again.stdout


@pytest.mark.llm
def test_llm_stop_serve_status_truthful(llm_base_url: str) -> None:
    if not llm.status().running:
        service_missing("the reachable LLM server is not the project-managed one; cannot test stop/serve")
    assert cli("llm", "stop").returncode == 0
    st = cli("llm", "status")
    assert st.returncode == 3 and "stopped" in st.stdout and "not answering" in st.stdout
    served = cli("llm", "serve")
    assert served.returncode == 0, served.stderr
    st = cli("llm", "status")
    assert st.returncode == 0 and "answering" in st.stdout and "not answering" not in st.stdout
