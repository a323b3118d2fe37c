"""The small typed records that pass between pipeline stages.

Stages know each other only through these (and the Protocols next to their
implementations: ``LLMClient``, ``GraphStore``), never through internals.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Item(BaseModel):
    """A catalog item as the pipeline sees it."""

    model_config = ConfigDict(frozen=True)

    item_id: str
    title: str | None = None
    text: dict[str, str] = Field(default_factory=dict, description="declared text fields, in order")
    properties: dict[str, Any] = Field(default_factory=dict)


class Fact(BaseModel):
    """One ``(head)-[relation]->(object)`` fact with its provenance."""

    model_config = ConfigDict(frozen=True)

    head_id: str
    relation: str
    object: str
    object_type: str
    head_kind: str = "Item"
    source: str = Field(description="'llm', 'catalog', or the name of an imported fact file")
    source_field: str | None = None
    evidence: str | None = None
    confidence: float | None = None
    model: str | None = None
    prompt_hash: str | None = None


class QuarantineRecord(BaseModel):
    """An item whose LLM answer stayed invalid after every repair: kept, never dropped."""

    item_id: str
    attempts: int
    errors: list[str]
    raw_output: str | None
    kind: str = "item"
