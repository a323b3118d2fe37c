"""Extraction reliability: a cache that heals, keys that name what answered, remembered
quarantines, endpoint failures that end quickly with a hint that fits, private files.

Everything runs against real HTTP servers (the scripted one, a silent one, a closed
port) and real SQLite files; nothing of kg_enhance is mocked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from kg_enhance.errors import LLMConfigurationError, ServiceUnavailableError
from kg_enhance.extract.cache import ExtractionCache
from kg_enhance.extract.client import OpenAICompatibleClient, normalise_endpoint, served_model_name
from kg_enhance.extract.engine import ExtractionResult, Extractor
from kg_enhance.extract.prompts import load_template
from kg_enhance.ontology import load_ontology
from kg_enhance.types import Item
from tests.support.helpers import write_job
from tests.support.scripted_server import ScriptedServer, SilentServer, Step

REPO = Path(__file__).resolve().parents[2]
ONTOLOGY = load_ontology(REPO / "schemas" / "movies.yaml")
ITEM = Item(
    item_id="6", title="Heat (1995)", text={"title": "Heat (1995)", "genres": "Action|Crime|Thriller"}
)


def answer(director: str) -> str:
    return json.dumps(
        {
            "facts": [
                {"relation": "DIRECTED_BY", "object": director, "object_type": "Person", "confidence": 0.9}
            ]
        }
    )


GOOD = answer("Michael Mann")
ITEMS = [ITEM.model_copy(update={"item_id": str(i), "title": f"Movie {i} (2000)"}) for i in range(40)]


def extract(
    url: str,
    cache_path: Path,
    items: list[Item] | None = None,
    *,
    model: str = "m",
    retry_quarantined: bool = False,
    max_repairs: int = 2,
) -> ExtractionResult:
    async def go() -> ExtractionResult:
        client = OpenAICompatibleClient(
            base_url=url, model=model, timeout_s=5, max_retries=1, backoff_initial_s=0.01, call_deadline_s=20
        )
        cache = ExtractionCache(cache_path)
        try:
            return await Extractor(
                client,
                ONTOLOGY,
                template=load_template("item_facts.v1"),
                cache=cache,
                mode="json_schema",
                max_repairs=max_repairs,
                max_concurrency=1,
                progress=False,
                retry_quarantined=retry_quarantined,
            ).run(items or [ITEM])
        finally:
            await client.close()
            cache.close()

    return asyncio.run(go())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- a cache that heals -----------------------------------------------------------------------------


def filled_cache(tmp_path: Path) -> Path:
    """A real cache file with 40 extractions, checkpointed (no -wal left) and closed."""
    path = tmp_path / "cache.sqlite"
    with ScriptedServer([Step(text=GOOD)] * len(ITEMS)) as srv:
        first = extract(srv.url, path, ITEMS)
    assert first.stats.extracted == len(ITEMS)
    assert path.stat().st_size > 3 * 4096 and not Path(f"{path}-wal").exists()
    return path


@pytest.mark.parametrize("damage", ["truncate", "junk"])
def test_a_damaged_cache_file_is_moved_aside_and_the_run_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    path = filled_cache(tmp_path)
    if damage == "truncate":
        with path.open("r+b") as fh:
            fh.truncate(path.stat().st_size // 2)
    else:
        path.write_bytes(b"\x00junk, not SQLite\xff" * 500)
    damaged = path.read_bytes()

    with caplog.at_level(logging.WARNING), ScriptedServer([Step(text=GOOD)] * len(ITEMS)) as srv:
        result = extract(srv.url, path, ITEMS)

    # every item is extracted again, from the LLM, into a fresh cache
    assert result.stats.extracted == len(ITEMS) and result.stats.cache_hits == 0
    assert len(srv.requests) == len(ITEMS)
    aside = sorted(tmp_path.glob("cache.sqlite.corrupt-*"))
    assert [p.name for p in aside if not p.name.endswith(("-wal", "-shm"))] == [aside[0].name]
    assert aside[0].read_bytes() == damaged  # the damaged file is kept as it was, for inspection
    cache = ExtractionCache(path)
    try:
        assert len(cache) == len(ITEMS)  # the fresh cache holds this run's answers
    finally:
        cache.close()
    lines = [w for w in warnings_of(caplog) if "moved it aside" in w]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert str(path) in lines[0] and str(aside[0]) in lines[0]
    reason = "malformed" if damage == "truncate" else "not a database"
    assert reason in lines[0]


def test_damage_found_while_the_cache_is_open_heals_and_loses_no_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite"
    keys_of_run: list[str] = []

    async def go() -> ExtractionResult:
        client = OpenAICompatibleClient(base_url=srv.url, model="m", max_retries=0)
        cache = ExtractionCache(path)  # opens cleanly: the damage comes afterwards
        try:
            ex = Extractor(
                client,
                ONTOLOGY,
                template=load_template("item_facts.v1"),
                cache=cache,
                mode="json_schema",
                max_concurrency=1,
                progress=False,
            )
            info = await client.server_info()
            keys_of_run.extend(ex.key_for(i, info) for i in ITEMS)
            assert len(cache.get_many(keys_of_run)) == len(ITEMS)  # all cached, before the damage
            # another process checkpoints the cache, then the disk scribbles over all but the first page
            other = sqlite3.connect(path)
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            other.close()
            size = path.stat().st_size
            with path.open("r+b") as fh:
                fh.seek(4096)
                fh.write(os.urandom(size - 4096))
            return await ex.run(ITEMS)
        finally:
            await client.close()
            cache.close()

    with ScriptedServer([Step(text=GOOD)] * (2 * len(ITEMS))) as srv:
        extract(srv.url, path, ITEMS)
        with caplog.at_level(logging.WARNING):
            result = asyncio.run(go())

    # the read met the damage: file moved aside, every item asked again, none lost
    assert result.stats.extracted == len(ITEMS) and len(result.facts) == len(ITEMS)
    assert result.stats.cache_hits == 0 and len(srv.requests) == 2 * len(ITEMS)
    assert list(tmp_path.glob("cache.sqlite.corrupt-*"))
    assert any("moved it aside" in w and "reading cached answers" in w for w in warnings_of(caplog))
    cache = ExtractionCache(path)
    try:
        assert len(cache.get_many(keys_of_run)) == len(ITEMS)  # and the answers were cached again
    finally:
        cache.close()


def test_an_unusable_cache_path_keeps_the_answers_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    where = tmp_path / "a-folder-not-a-file"
    where.mkdir()
    with caplog.at_level(logging.WARNING), ScriptedServer([Step(text=GOOD)]) as srv:
        result = extract(srv.url, where)
    assert result.stats.extracted == 1 and result.facts[0].object == "Michael Mann"
    assert any("cannot be used" in w and str(where) in w for w in warnings_of(caplog))


# -- keys name what answered --------------------------------------------------------------------------


def test_two_endpoints_serving_the_same_model_name_do_not_share_answers(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with (
        ScriptedServer([Step(text=answer("Michael Mann"))]) as a,
        ScriptedServer([Step(text=answer("Someone Else"))]) as b,
    ):
        from_a = extract(a.url, path)
        from_b = extract(b.url, path)
        again_a = extract(a.url, path)
    assert [f.object for f in from_a.facts] == ["Michael Mann"]
    assert [f.object for f in from_b.facts] == ["Someone Else"]  # b was asked, not served a's answer
    assert len(a.requests) == 1 and len(b.requests) == 1
    assert again_a.stats.cache_hits == 1 and [f.object for f in again_a.facts] == ["Michael Mann"]


def test_the_served_model_keys_the_cache_and_names_the_facts(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    # llama.cpp answers any model name with what it serves
    with ScriptedServer([Step(text=GOOD)] * 3, models=["qwen2.5-0.5b"], owned_by="llamacpp") as srv:
        first = extract(srv.url, path, model="whatever-i-configured")
        srv.models = ["smollm2-135m"]  # same URL, same configured name, another model behind it
        second = extract(srv.url, path, model="whatever-i-configured")
        third = extract(srv.url, path, model="whatever-i-configured")
    assert {f.model for f in first.facts} == {"qwen2.5-0.5b"}
    assert second.stats.cache_hits == 0 and {f.model for f in second.facts} == {"smollm2-135m"}
    assert third.stats.cache_hits == 1
    assert len(srv.requests) == 2


def test_the_configured_model_is_used_when_the_server_lists_it() -> None:
    assert served_model_name("gpt-4o-mini", ["gpt-4o", "gpt-4o-mini"]) == "gpt-4o-mini"
    assert served_model_name("llama3", ["llama3:latest", "mistral:latest"]) == "llama3:latest"
    assert served_model_name("anything", ["b-model", "a-model"]) == "a-model,b-model"
    assert served_model_name("mine", []) == "mine"
    assert (
        normalise_endpoint("HTTPS://user:secret@API.Example.com:443/v1/?x=1") == "https://api.example.com/v1"
    )
    assert normalise_endpoint("http://127.0.0.1:8089/v1/") == "http://127.0.0.1:8089/v1"


def test_a_server_without_a_model_list_is_keyed_by_the_configured_name(tmp_path: Path) -> None:
    with ScriptedServer([Step(text=GOOD)], model_list_status=404) as srv:
        result = extract(srv.url, tmp_path / "c.sqlite", model="my-model")
    assert result.stats.extracted == 1 and {f.model for f in result.facts} == {"my-model"}


def test_run_and_dry_run_agree_on_keys_when_the_served_model_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kg_enhance import api

    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    job = write_job(tmp_path, item_limit=3)
    with ScriptedServer([Step(text=GOOD)] * 3, models=["served-x"]) as srv:
        sets = [f"llm.base_url={srv.url}", "llm.structured_output=json_schema"]
        assert api.dry_run(job, overrides=sets)["cache_hits"] == 0
        report = api.run_job(job, until="extract", progress=False, overrides=sets).report
        again = api.dry_run(job, overrides=sets)
    ex = report["extract"]
    assert ex["served_model"] == "served-x" and ex["model"] == "smollm2-135m-instruct"
    assert ex["endpoint"] == srv.url
    facts = [
        json.loads(line) for line in (tmp_path / "run" / "extract" / "facts.jsonl").read_text().splitlines()
    ]
    assert facts and {f["model"] for f in facts} == {"served-x"}
    assert again["cache_hits"] == 3 and again["estimated_calls"] == 0


def test_a_fully_cached_rerun_completes_while_the_server_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from kg_enhance import api

    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    job = write_job(tmp_path, item_limit=2)
    port = free_port()
    sets = [f"llm.base_url=http://127.0.0.1:{port}/v1"]
    with ScriptedServer([Step(text=GOOD)] * 2, models=["served-x"], owned_by="me", port=port):
        first = api.run_job(job, until="extract", progress=False, overrides=sets).report["extract"]
    assert first["extracted"] == 2 and first["structured_output"] == "json_object"
    # the server is gone now (connection refused): the cached answers still make a complete run
    with caplog.at_level(logging.WARNING):
        second = api.run_job(job, until="extract", progress=False, overrides=sets).report["extract"]
    assert second["cache_hits"] == 2 and second["llm_calls"] == 0
    assert second["structured_output"] == "json_object" and second["served_model"] == "served-x"
    assert any("served-x" in w and "cached answers still count" in w for w in warnings_of(caplog))
    # while an uncached item fails at once, saying which item and what to do
    more = write_job(tmp_path, item_limit=3)
    with pytest.raises(ServiceUnavailableError, match=r"item \d+: .*connection refused.*llm serve"):
        api.run_job(more, until="extract", progress=False, overrides=sets)


# -- quarantine memory ----------------------------------------------------------------------------------


def test_a_quarantined_subject_is_remembered_and_asked_again_only_on_request(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with ScriptedServer([Step(text="nope")] * 3) as srv:
        first = extract(srv.url, path)
        asked_first = len(srv.requests)
        second = extract(srv.url, path)
        asked_second = len(srv.requests) - asked_first
        srv.script = [Step(text=GOOD)]
        third = extract(srv.url, path, retry_quarantined=True)
        asked_third = len(srv.requests) - asked_first
        fourth = extract(srv.url, path)
    assert first.stats.quarantined == 1 and asked_first == 3
    # second run: not asked, still reported as quarantined with the raw output and errors
    assert asked_second == 0
    assert second.stats.quarantined == 1 and second.stats.quarantine_remembered == 1
    assert second.stats.llm_calls == 0 and second.stats.extracted == 0
    q = second.quarantine[0]
    assert q.item_id == "6" and q.raw_output == "nope" and q.errors == first.quarantine[0].errors
    assert q.attempts == 3
    # with retry: asked again, and the good answer replaces the remembered quarantine
    assert asked_third == 1 and third.stats.extracted == 1 and third.stats.quarantine_remembered == 0
    assert fourth.stats.cache_hits == 1 and fourth.stats.quarantined == 0


def test_quarantine_memory_through_the_api_and_the_cli_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from kg_enhance import api
    from kg_enhance.cli import main

    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    job = write_job(tmp_path, item_limit=1)
    with ScriptedServer([Step(text="nope")] * 3) as srv:
        sets = [f"llm.base_url={srv.url}", "llm.structured_output=json_schema"]
        first = api.run_job(job, until="extract", progress=False, overrides=sets).report["extract"]
        second = api.run_job(job, until="extract", progress=False, overrides=sets).report["extract"]
        asked_before_retry = len(srv.requests)
        srv.script = [Step(text=GOOD)]
        set_args = [arg for s in sets for arg in ("--set", s)]
        cli = CliRunner().invoke(
            main, ["run", str(job), "--until", "extract", "--no-progress", "--retry-quarantined", *set_args]
        )
        asked_by_retry = len(srv.requests) - asked_before_retry
    assert first["quarantined"] == 1 and first["quarantine_remembered"] == 0
    assert asked_before_retry == 3  # all of them by the first run
    assert second["quarantined"] == 1 and second["quarantine_remembered"] == 1 and second["llm_calls"] == 0
    assert cli.exit_code == 0, cli.output
    assert asked_by_retry == 1
    third = json.loads((tmp_path / "run" / "report.json").read_text())["extract"]
    assert third["extracted"] == 1 and third["quarantined"] == 0 and third["quarantine_remembered"] == 0


def test_the_remembered_quarantine_is_written_to_quarantine_jsonl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kg_enhance import api

    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    job = write_job(tmp_path, item_limit=1)
    quarantine_file = tmp_path / "run" / "extract" / "quarantine.jsonl"
    with ScriptedServer([Step(text="nope")] * 3) as srv:
        sets = [f"llm.base_url={srv.url}", "llm.structured_output=json_schema"]
        api.run_job(job, until="extract", progress=False, overrides=sets)
        quarantine_file.unlink()
        api.run_job(job, until="extract", progress=False, overrides=sets)
    (row,) = [json.loads(line) for line in quarantine_file.read_text().splitlines()]
    assert row["raw_output"] == "nope" and row["errors"] and row["attempts"] == 3


# -- endpoint failures ----------------------------------------------------------------------------------


def complete_once(client: OpenAICompatibleClient) -> None:
    async def go() -> None:
        try:
            await client.complete([{"role": "user", "content": "hi"}], schema=None, mode="prompt")
        finally:
            await client.close()

    asyncio.run(go())


@pytest.mark.parametrize("timeout_s", [30.0, 0.5])
def test_an_endpoint_that_never_answers_fails_within_the_deadline(timeout_s: float) -> None:
    with SilentServer() as silent:
        client = OpenAICompatibleClient(
            base_url=silent.url, model="m", timeout_s=timeout_s, max_retries=6, call_deadline_s=2.0
        )
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError) as info:
            complete_once(client)
        elapsed = time.monotonic() - started
        assert silent.accepted  # it did accept the connection
    message = str(info.value)
    assert elapsed < 2.0 + 8.0
    assert "did not answer within 2 s" in message and "llm.call_deadline_s" in message
    assert "\n" not in message


def test_a_refused_connection_fails_fast_with_the_local_hint() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    # the defaults: 6 retries, exponential backoff from 1 s (over a minute before this change)
    client = OpenAICompatibleClient(base_url=url, model="m")
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as info:
        complete_once(client)
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "connection refused" in message and "kg-enhance llm serve" in message
    assert url in message and "\n" not in message
    assert client.stats.retries <= 2


def test_a_remote_endpoint_gets_a_network_hint_not_llm_serve() -> None:
    # .invalid never resolves (RFC 2606): the request fails before any byte is sent
    client = OpenAICompatibleClient(
        base_url="https://user:pw@kg-enhance-test.invalid/v1", model="m", call_deadline_s=30
    )
    with pytest.raises(ServiceUnavailableError) as info:
        complete_once(client)
    message = str(info.value)
    assert "llm serve" not in message
    assert "llm.base_url" in message and "network" in message
    assert "kg-enhance-test.invalid" in message and "pw" not in message  # no credentials in messages


def test_401_names_the_key_variable_and_whether_it_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KG_TEST_MISSING_KEY", raising=False)
    with ScriptedServer([Step(status=401)] * 2) as srv:
        with pytest.raises(LLMConfigurationError) as unset:
            complete_once(
                OpenAICompatibleClient(base_url=srv.url, model="m", api_key_env="KG_TEST_MISSING_KEY")
            )
        monkeypatch.setenv("KG_TEST_MISSING_KEY", "sk-secret-value-42")
        with pytest.raises(LLMConfigurationError) as wrong:
            complete_once(
                OpenAICompatibleClient(base_url=srv.url, model="m", api_key_env="KG_TEST_MISSING_KEY")
            )
    for info in (unset, wrong):
        text = str(info.value)
        assert "401" in text and "KG_TEST_MISSING_KEY" in text and "llm.api_key_env" in text
        assert "\n" not in text and "sk-secret" not in text
    assert "not set" in str(unset.value)
    assert "is set" in str(wrong.value) and "not set" not in str(wrong.value)


def test_403_names_the_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KG_TEST_KEY_403", "sk-x")
    with ScriptedServer([Step(status=403)]) as srv, pytest.raises(LLMConfigurationError) as info:
        complete_once(OpenAICompatibleClient(base_url=srv.url, model="m", api_key_env="KG_TEST_KEY_403"))
    assert "403" in str(info.value) and "KG_TEST_KEY_403" in str(info.value)


# -- privacy -----------------------------------------------------------------------------------------------


def test_the_cache_folder_is_private_and_the_file_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "new-folder" / "cache.sqlite"
    with ScriptedServer([Step(text=GOOD)]) as srv:
        extract(srv.url, path)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cache = ExtractionCache(path)  # while open, SQLite's -wal and -shm exist: same mode
    try:
        cache.put(
            "k",
            item_id="1",
            model="m",
            raw="{}",
            facts=[],
            dropped=[],
            prompt_tokens=0,
            completion_tokens=0,
            attempts=1,
        )
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            assert side.exists() and stat.S_IMODE(side.stat().st_mode) == 0o600
    finally:
        cache.close()


def test_an_existing_world_readable_cache_file_is_made_0600(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    ExtractionCache(path).close()
    path.chmod(0o644)
    ExtractionCache(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
