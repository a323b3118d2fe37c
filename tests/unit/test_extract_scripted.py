"""The extraction engine against a scripted OpenAI-compatible server (real HTTP, real client).

Each case asserts its outcome (retried, repaired, quarantined or fatal) and that every
item ends up either extracted or quarantined.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from kg_enhance.errors import LLMConfigurationError, ServiceUnavailableError
from kg_enhance.extract.cache import ExtractionCache
from kg_enhance.extract.client import OpenAICompatibleClient
from kg_enhance.extract.engine import ExtractionResult, Extractor
from kg_enhance.extract.prompts import load_template
from kg_enhance.ontology import load_ontology
from kg_enhance.types import Item
from tests.support.scripted_server import ScriptedServer, Step

REPO = Path(__file__).resolve().parents[2]
ONTOLOGY = load_ontology(REPO / "schemas" / "movies.yaml")
ITEM = Item(
    item_id="6", title="Heat (1995)", text={"title": "Heat (1995)", "genres": "Action|Crime|Thriller"}
)
GOOD = json.dumps(
    {
        "facts": [
            {"relation": "DIRECTED_BY", "object": "Michael Mann", "object_type": "Person", "confidence": 0.9}
        ]
    }
)


def run(
    server: ScriptedServer,
    tmp_path: Path,
    items: list[Item] | None = None,
    *,
    timeout_s: float = 5.0,
    mode: str = "json_schema",
    head: str = "Item",
) -> tuple[ExtractionResult, OpenAICompatibleClient]:
    async def go() -> tuple[ExtractionResult, OpenAICompatibleClient]:
        client = OpenAICompatibleClient(
            base_url=server.url,
            model="m",
            timeout_s=timeout_s,
            max_retries=3,
            backoff_initial_s=0.01,
            backoff_max_s=2.0,
            api_key_env="KG_TEST_SECRET_KEY",
        )
        cache = ExtractionCache(tmp_path / "cache.sqlite")
        try:
            ex = Extractor(
                client,
                ONTOLOGY,
                template=load_template("item_facts.v1" if head == "Item" else "user_prefs.v1"),
                cache=cache,
                mode=mode,
                head=head,
                grounding="world" if head == "Item" else "text",
                max_concurrency=1,
                progress=False,
            )
            return await ex.run(items or [ITEM]), client
        finally:
            await client.close()
            cache.close()

    return asyncio.run(go())


def accounted(result: ExtractionResult, n: int = 1) -> None:
    assert result.stats.extracted + result.stats.quarantined == n


def test_malformed_json_is_repaired(tmp_path: Path) -> None:
    with ScriptedServer([Step(text='{"facts": [{"relation": "DIRECTED_BY", "obj'), Step(text=GOOD)]) as srv:
        result, _ = run(srv, tmp_path)
    accounted(result)
    assert result.stats.repairs == 1 and result.stats.extracted == 1
    assert result.facts[0].object == "Michael Mann"
    repair_prompt = srv.requests[1][1]["messages"][-1]["content"]
    assert "invalid" in repair_prompt and "truncated" in repair_prompt


def test_truncated_output_three_times_is_quarantined_with_raw_output(tmp_path: Path) -> None:
    cut = '{"facts": [{"relation": "STARRING", "object": "Al Pa'
    with ScriptedServer([Step(text=cut, finish_reason="length")] * 3) as srv:
        result, _ = run(srv, tmp_path)
    accounted(result)
    q = result.quarantine[0]
    assert q.item_id == "6" and q.attempts == 3 and q.raw_output == cut
    assert any("max_tokens" in e for e in q.errors)
    assert len(srv.requests) == 3


@pytest.mark.parametrize(
    "bad",
    [
        '{"facts": [{"relation": "DIRECTED_BY", "object": 42, "object_type": "Person"}]}',  # wrong type
        '{"facts": [{"relation": "FAVOURITE_SNACK", "object": "popcorn", "object_type": "Theme"}]}',  # off-ontology
        '{"facts": [{"relation": "DIRECTED_BY", "object": "USA", "object_type": "Country"}]}',  # wrong object type
    ],
)
def test_invalid_then_valid_is_repaired(tmp_path: Path, bad: str) -> None:
    with ScriptedServer([Step(text=bad), Step(text=GOOD)]) as srv:
        result, _ = run(srv, tmp_path)
    accounted(result)
    assert result.stats.repairs == 1 and result.stats.extracted == 1


def test_json_array_is_accepted_as_facts(tmp_path: Path) -> None:
    arr = json.dumps(json.loads(GOOD)["facts"])
    with ScriptedServer([Step(text=arr)]) as srv:
        result, _ = run(srv, tmp_path)
    assert result.stats.extracted == 1 and result.stats.repairs == 0 and len(result.facts) == 1


def test_429_honours_retry_after(tmp_path: Path) -> None:
    with ScriptedServer([Step(status=429, headers={"retry-after": "1"}), Step(text=GOOD)]) as srv:
        result, _ = run(srv, tmp_path)
    accounted(result)
    assert result.stats.retries == 1 and result.stats.llm_calls == 1
    gap = srv.requests[1][0] - srv.requests[0][0]
    assert gap >= 0.95  # waited at least the server's Retry-After, not the 0.01 s backoff


def test_500s_are_retried(tmp_path: Path) -> None:
    with ScriptedServer([Step(status=500), Step(status=503), Step(text=GOOD)]) as srv:
        result, _ = run(srv, tmp_path)
    assert result.stats.retries == 2 and result.stats.extracted == 1


def test_timeout_is_retried(tmp_path: Path) -> None:
    with ScriptedServer([Step(text=GOOD, delay_s=1.5), Step(text=GOOD)]) as srv:
        result, _ = run(srv, tmp_path, timeout_s=0.5)
    assert result.stats.retries == 1 and result.stats.extracted == 1


def test_persistent_500_is_a_one_line_service_error(tmp_path: Path) -> None:
    with (
        ScriptedServer([Step(status=500)] * 10) as srv,
        pytest.raises(ServiceUnavailableError, match="HTTP 500 after 3 retries") as info,
    ):
        run(srv, tmp_path)
    assert "\n" not in str(info.value)
    assert len(srv.requests) == 4


def test_401_is_fatal_without_retry_and_never_leaks_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KG_TEST_SECRET_KEY", "sk-very-secret-123")
    with (
        ScriptedServer([Step(status=401)] * 5) as srv,
        pytest.raises(LLMConfigurationError, match="authentication failed") as info,
    ):
        run(srv, tmp_path)
    assert len(srv.requests) == 1
    assert "sk-very-secret" not in str(info.value)
    db = (tmp_path / "cache.sqlite").read_bytes()
    assert b"sk-very-secret" not in db


def test_404_unknown_model_is_fatal(tmp_path: Path) -> None:
    with (
        ScriptedServer([Step(status=404)]) as srv,
        pytest.raises(LLMConfigurationError, match="not found .404"),
    ):
        run(srv, tmp_path)


def test_mixed_batch_every_item_accounted_and_quarantine_remembered(tmp_path: Path) -> None:
    items = [ITEM.model_copy(update={"item_id": str(i), "title": f"Movie {i} (2000)"}) for i in range(4)]
    script = [
        Step(text=GOOD),
        Step(text="nope"),
        Step(text="nope"),
        Step(text="nope"),
        Step(text=GOOD),
        Step(text=GOOD),
    ]
    # one server for both runs: the endpoint is part of the cache key
    with ScriptedServer(script) as srv:
        first, _ = run(srv, tmp_path, items)
        accounted(first, 4)
        assert first.stats.quarantined == 1 and first.stats.extracted == 3
        asked = len(srv.requests)
        second, _ = run(srv, tmp_path, items)
    # the three successes come from the cache; the quarantined item is remembered, not asked again
    accounted(second, 4)
    assert second.stats.cache_hits == 3 and second.stats.llm_calls == 0
    assert second.stats.quarantined == 1 and second.stats.quarantine_remembered == 1
    assert len(srv.requests) == asked


def test_response_format_per_mode(tmp_path: Path) -> None:
    with ScriptedServer([Step(text=GOOD)] * 3) as srv:
        run(srv, tmp_path / "a", mode="json_schema")
        run(srv, tmp_path / "b", mode="json_object")
        run(srv, tmp_path / "c", mode="prompt")
    formats = [body.get("response_format") for _, body in srv.requests]
    assert formats[0]["type"] == "json_schema" and formats[0]["json_schema"]["strict"] is True
    assert formats[1]["type"] == "json_object" and "schema" in formats[1]
    assert formats[2] is None


def test_auto_mode_detection() -> None:
    async def detect(owner: str) -> str:
        with ScriptedServer([], owned_by=owner) as srv:
            client = OpenAICompatibleClient(base_url=srv.url, model="m")
            try:
                return await client.detect_mode()
            finally:
                await client.close()

    assert asyncio.run(detect("me")) == "json_object"  # llama-cpp-python
    assert asyncio.run(detect("vllm")) == "json_schema"
    assert asyncio.run(detect("library")) == "json_schema"  # ollama


def test_budget_stops_cleanly_and_keeps_finished_items(tmp_path: Path) -> None:
    items = [ITEM.model_copy(update={"item_id": str(i), "title": f"Movie {i} (2000)"}) for i in range(5)]

    async def go() -> ExtractionResult:
        client = OpenAICompatibleClient(base_url=srv.url, model="m", max_retries=0)
        cache = ExtractionCache(tmp_path / "cache.sqlite")
        try:
            # each scripted call costs 15 tokens: the budget allows two calls
            ex = Extractor(
                client,
                ONTOLOGY,
                template=load_template("item_facts.v1"),
                cache=cache,
                mode="json_schema",
                max_concurrency=1,
                progress=False,
                budget_tokens=30,
            )
            return await ex.run(items)
        finally:
            await client.close()
            cache.close()

    with ScriptedServer([Step(text=GOOD)] * 5) as srv:
        result = asyncio.run(go())
    assert result.stats.budget_reached
    assert result.stats.extracted == 2 and result.stats.quarantined == 0 and result.stats.pending == 3
    assert len(srv.requests) == 2
    assert len(ExtractionCache(tmp_path / "cache.sqlite")) == 2


def test_rate_limiter_spaces_requests() -> None:
    from kg_enhance.extract.engine import RateLimiter

    async def go() -> list[float]:
        limiter = RateLimiter(requests_per_minute=2, window_s=0.5)
        stamps = []
        for _ in range(4):
            await limiter.acquire(1)
            stamps.append(time.monotonic())
        return stamps

    stamps = asyncio.run(go())
    # two requests per 0.5 s window: the third waits for the first to leave the window
    assert stamps[2] - stamps[0] >= 0.45 and stamps[3] - stamps[1] >= 0.45


def test_job_budget_and_dry_run_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kg_enhance import api
    from tests.support.helpers import write_job

    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    with ScriptedServer([Step(text=GOOD)] * 10) as srv:
        job = write_job(tmp_path, item_limit=5)
        text = job.read_text().replace(
            "max_concurrency: 1",
            "max_concurrency: 1\n  budget_tokens: 30\n  structured_output: json_schema\n  price_per_1m_input_tokens: 1000",
        )
        job.write_text(text.replace("base_url: http", f"base_url: {srv.url}\n  # http"))
        estimate = api.dry_run(job)
        assert (
            estimate["estimated_calls"] == 5
            and estimate["cache_hits"] == 0
            and estimate["estimated_cost_max"] > 0
        )
        report = api.run_job(job, until="extract", progress=False).report
    ex = report["extract"]
    assert ex["budget_reached"] and ex["extracted"] == 2 and ex["pending"] == 3 and ex["quarantined"] == 0
    assert ex["cost"] == pytest.approx(20 / 1e6 * 1000)
    assert report["stages"]["extract"]["status"] == "ok"
    lines = (tmp_path / "run" / "extract" / "facts.jsonl").read_text().splitlines()
    assert len(lines) == 2
    again = api.dry_run(job)
    assert again["cache_hits"] == 2 and again["estimated_calls"] == 3


USER = Item(item_id="18", text={"tag": "Mafia; Al Pacino; sci-fi; atmospheric"})


def test_user_side_preferences_are_user_headed_and_grounded(tmp_path: Path) -> None:
    answer = {
        "facts": [
            {"relation": "PREFERS", "object": "Al Pacino", "object_type": "Person", "confidence": 0.9},
            {"relation": "PREFERS", "object": "sci-fi", "object_type": "Theme", "confidence": 0.8},
            {"relation": "PREFERS", "object": "Tom Hanks", "object_type": "Person", "confidence": 0.5},
        ]
    }
    with ScriptedServer([Step(text=json.dumps(answer))]) as srv:
        result, _ = run(srv, tmp_path, [USER], head="User")
    accounted(result)
    got = {(f.head_kind, f.head_id, f.relation, f.object, f.object_type) for f in result.facts}
    # "sci-fi" is in the Genre vocabulary, so it is retyped; Tom Hanks is not in the user's tags
    assert got == {
        ("User", "18", "PREFERS", "Al Pacino", "Person"),
        ("User", "18", "PREFERS", "Sci-Fi", "Genre"),
    }
    assert any("grounding=text" in d for d in result.dropped["18"])
    sent = srv.requests[0][1]
    schema = json.dumps(sent["response_format"])
    assert "PREFERS" in schema and "DIRECTED_BY" not in schema  # only user-headed relations are asked for
    assert "Mafia; Al Pacino" in sent["messages"][-1]["content"]


def test_item_relations_are_refused_for_users_and_the_user_is_quarantined(tmp_path: Path) -> None:
    with ScriptedServer([Step(text=GOOD)] * 3) as srv:
        result, _ = run(srv, tmp_path, [USER], head="User")
    accounted(result)
    assert result.quarantine[0].kind == "user" and result.quarantine[0].item_id == "18"
    assert not result.facts
