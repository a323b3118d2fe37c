"""Extraction against the real local LLM server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kg_enhance.extract.cache import ExtractionCache
from kg_enhance.extract.client import OpenAICompatibleClient
from kg_enhance.extract.engine import Extractor
from kg_enhance.extract.prompts import load_template
from kg_enhance.ontology import load_ontology
from kg_enhance.types import Item

REPO = Path(__file__).resolve().parents[2]
ONTOLOGY = load_ontology(REPO / "schemas" / "movies.yaml")
ITEMS = [
    Item(
        item_id="1",
        title="Toy Story (1995)",
        text={"title": "Toy Story (1995)", "genres": "Adventure|Animation|Children|Comedy|Fantasy"},
    ),
    Item(
        item_id="260",
        title="Star Wars: Episode IV - A New Hope (1977)",
        text={"title": "Star Wars: Episode IV - A New Hope (1977)", "genres": "Action|Adventure|Sci-Fi"},
    ),
    Item(
        item_id="318",
        title="Shawshank Redemption, The (1994)",
        text={"title": "Shawshank Redemption, The (1994)", "genres": "Crime|Drama"},
    ),
]


def _run(url: str, cache_path: Path, items: list[Item], mode: str | None = None):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        client = OpenAICompatibleClient(base_url=url, model="smollm2-135m-instruct", max_tokens=320)
        chosen = mode or await client.detect_mode()
        cache = ExtractionCache(cache_path)
        try:
            ex = Extractor(
                client,
                ONTOLOGY,
                template=load_template("item_facts.v1"),
                cache=cache,
                mode=chosen,
                progress=False,
            )
            return await ex.run(items), chosen
        finally:
            await client.close()
            cache.close()

    return asyncio.run(go())


@pytest.mark.llm
def test_detects_llama_cpp_and_every_item_is_accounted_for(llm_base_url: str, tmp_path: Path) -> None:
    result, mode = _run(llm_base_url, tmp_path / "c.sqlite", ITEMS)
    assert mode == "json_object"  # llama-cpp-python's server rejects json_schema
    stats = result.stats
    extracted_ids = {f.head_id for f in result.facts}
    quarantined_ids = {q.item_id for q in result.quarantine}
    assert stats.extracted + stats.quarantined == len(ITEMS)
    assert extracted_ids <= {i.item_id for i in ITEMS}
    assert not extracted_ids & quarantined_ids
    assert stats.llm_calls >= len(ITEMS)
    assert stats.prompt_tokens > 0 and stats.completion_tokens > 0
    for fact in result.facts:
        assert fact.relation in ONTOLOGY.relations
        assert fact.object_type in ONTOLOGY.relations[fact.relation].tail
        assert fact.source == "llm" and fact.model == "smollm2-135m-instruct"
    for q in result.quarantine:
        assert q.errors and q.attempts == 3


@pytest.mark.llm
def test_rerun_is_served_from_cache_and_edits_reextract_only_that_item(
    llm_base_url: str, tmp_path: Path
) -> None:
    cache = tmp_path / "c.sqlite"
    first, _ = _run(llm_base_url, cache, ITEMS, mode="json_object")
    second, _ = _run(llm_base_url, cache, ITEMS, mode="json_object")
    assert second.stats.llm_calls == 0
    assert second.stats.cache_hits == first.stats.extracted
    assert sorted(f.model_dump_json() for f in second.facts) == sorted(
        f.model_dump_json() for f in first.facts
    )
    edited = [
        ITEMS[0].model_copy(update={"text": {**ITEMS[0].text, "genres": "Animation|Comedy"}}),
        *ITEMS[1:],
    ]
    third, _ = _run(llm_base_url, cache, edited, mode="json_object")
    # only the edited item (plus any earlier quarantined ones, which are never cached) goes to the LLM
    assert third.stats.cache_hits == first.stats.extracted - (
        1 if "1" not in {q.item_id for q in first.quarantine} else 0
    )
    assert third.stats.items - third.stats.cache_hits == 1 + first.stats.quarantined - (
        1 if "1" in {q.item_id for q in first.quarantine} else 0
    )


@pytest.mark.llm
def test_prompt_mode_works_on_the_same_server(llm_base_url: str, tmp_path: Path) -> None:
    result, _ = _run(llm_base_url, tmp_path / "c.sqlite", ITEMS[:1], mode="prompt")
    assert result.stats.extracted + result.stats.quarantined == 1
