"""LLM text embeddings against the real services: the local llama.cpp server and Neo4j."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from kg_enhance.config import defaults as D
from kg_enhance.config.models import LLMConfig, TextEmbeddingConfig
from kg_enhance.extract.client import OpenAICompatibleClient
from kg_enhance.extract.text_embeddings import TextEmbeddingCache, embed_texts
from kg_enhance.graph.memory import InMemoryGraphStore, MemoryDatabase
from kg_enhance.graph.store import Neo4jStore

TEXTS = [
    ("1", "title: Toy Story (1995)\ngenres: Adventure|Animation|Children|Comedy|Fantasy"),
    ("2", "title: Jumanji (1995)\ngenres: Adventure|Children|Fantasy"),
    ("3", "title: Heat (1995)\ngenres: Action|Crime|Thriller"),
    ("4", "title: Toy Story 2 (1999)\ngenres: Adventure|Animation|Children|Comedy|Fantasy"),
    ("5", "title: Casino (1995)\ngenres: Crime|Drama"),
]


@pytest.mark.llm
def test_the_local_server_embeds_with_a_stable_dimension_and_still_chats(
    llm_base_url: str, tmp_path: Path
) -> None:
    """`kg-enhance llm serve` serves a mean-pooled embedding alias of the same GGUF next to the chat alias."""
    llm = LLMConfig(base_url=llm_base_url)
    cfg = TextEmbeddingConfig(enabled=True, model=D.LLM_EMBED_MODEL, batch_size=2)
    cache = TextEmbeddingCache(tmp_path / "c.sqlite")
    run = embed_texts(TEXTS, cfg, llm, cache=cache)
    assert run.requests == 3 and run.model == D.LLM_EMBED_MODEL
    assert run.vectors.shape == (5, 576)  # SmolLM2-135M's hidden size, in every batch
    assert np.isfinite(run.vectors).all() and (np.linalg.norm(run.vectors, axis=1) > 0).all()
    assert len({tuple(v[:8]) for v in run.vectors}) == 5  # one vector per text, not per token or batch

    # the same text through another batch composition gives the same vector (no batch leakage)
    single = embed_texts([TEXTS[2]], cfg, llm, cache=TextEmbeddingCache(tmp_path / "other.sqlite"))
    np.testing.assert_allclose(single.vectors[0], run.vectors[2], rtol=1e-3, atol=1e-3)

    async def chat() -> str:
        client = OpenAICompatibleClient(base_url=llm_base_url, model=D.LLM_MODEL, max_tokens=8)
        try:
            answer = await client.complete(
                [{"role": "user", "content": "Say hi."}], schema=None, mode="prompt"
            )
        finally:
            await client.close()
        return answer.text

    assert asyncio.run(chat()).strip()  # chat completions still answer after the embedding model swapped in
    cache.close()


def _vectors() -> dict[str, list[float]]:
    """Item "a"'s nearest are "b" then "c"; "d" points away."""
    return {
        "a": [1.0, 0.0, 0.0, 0.1],
        "b": [0.9, 0.1, 0.0, 0.1],
        "c": [0.6, 0.6, 0.0, 0.1],
        "d": [-1.0, 0.0, 0.2, 0.0],
    }


def _fill(store: Neo4jStore | InMemoryGraphStore, vectors: dict[str, list[float]], run_id: str) -> list[str]:
    store.write_items([{"item_id": i, "props": {"title": i}} for i in vectors], item_label="Movie")
    store.write_text_embeddings(
        "item", [{"id": i, "vector": v} for i, v in vectors.items()], model="m", run_id=run_id
    )
    return store.finish_text_embeddings(dimensions={"item": 4}, run_id=run_id)


@pytest.mark.neo4j
def test_the_text_vector_index_answers_within_the_namespace_only(
    neo4j_store: Neo4jStore, neo4j_config: object
) -> None:
    other = Neo4jStore(neo4j_store.config, namespace="other-ns")
    try:
        # the other namespace has an item identical to "a": it must never be a neighbour of ours
        assert _fill(other, {"a2": [1.0, 0.0, 0.0, 0.1], "z": [0.0, 1.0, 0.0, 0.0]}, "r0") == [
            "item_text_embedding"
        ]
        assert _fill(neo4j_store, _vectors(), "r1") == ["item_text_embedding"]
        indexes = neo4j_store.query(
            "SHOW VECTOR INDEXES YIELD name, labelsOrTypes, properties, state, options "
            "WHERE name = 'item_text_embedding' RETURN labelsOrTypes, properties, state, "
            "options.indexConfig['vector.dimensions'] AS dims"
        )
        assert indexes == [
            {"labelsOrTypes": ["Item"], "properties": ["text_embedding"], "state": "ONLINE", "dims": 4}
        ]

        neighbours = neo4j_store.text_neighbours("a", k=3)
        assert [n["item_id"] for n in neighbours] == ["b", "c", "d"]
        assert neighbours[0]["score"] > neighbours[1]["score"] > neighbours[2]["score"]
        assert [n["item_id"] for n in other.text_neighbours("a2", k=3)] == ["z"]
        # the saved Browser query finds the same nearest items, in this namespace only
        browser = neo4j_store.run_statement("browser/nearest_items_by_text", item_id="a")
        assert [r["item_id"] for r in browser][:3] == ["b", "c", "d"]
        assert "a2" not in {r["item_id"] for r in browser}

        # the in-memory store finds the same neighbours in the same order (its cosine is exact; Neo4j 5.26's
        # index quantises vectors by default, so its scores are approximate, far from the query most)
        memory = InMemoryGraphStore(MemoryDatabase(), namespace=neo4j_store.namespace)
        _fill(memory, _vectors(), "r1")
        mem = memory.text_neighbours("a", k=3)
        assert [n["item_id"] for n in mem] == ["b", "c", "d"]
        assert abs(mem[0]["score"] - neighbours[0]["score"]) < 0.01

        # a later run replaces this namespace's vectors and leaves the other namespace's alone
        neo4j_store.write_text_embeddings(
            "item", [{"id": "a", "vector": [0.0, 1.0, 0.0, 0.0]}], model="m", run_id="r2"
        )
        neo4j_store.finish_text_embeddings(dimensions={"item": 4}, run_id="r2")
        left = neo4j_store.query(
            "MATCH (i:Item) WHERE i.text_embedding IS NOT NULL RETURN i.ns AS ns, i.item_id AS id ORDER BY ns, id"
        )
        assert left == [
            {"ns": "other-ns", "id": "a2"},
            {"ns": "other-ns", "id": "z"},
            {"ns": neo4j_store.namespace, "id": "a"},
        ]
    finally:
        other.clear_namespace()
        other.close()
