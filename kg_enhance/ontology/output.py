"""Output models, JSON Schema and prompt text generated from an ontology.

Two views of one contract:

* a pydantic model (:func:`build_fact_model`) that *validates* what comes back;
* a hand-built, provider-portable JSON Schema (:func:`fact_json_schema`) that is *sent*
  to the endpoint. It sticks to the subset that OpenAI's strict mode, vLLM/Ollama
  guided decoding and llama.cpp's grammar converter all accept (``anyOf``, ``enum``,
  ``maxItems``, ``maxLength``, ``additionalProperties: false``, everything required).

``tests/unit/test_ontology.py`` checks that every document valid under the schema is
accepted by the model.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from kg_enhance.ontology.models import Ontology

#: longest entity name we accept from an LLM, in characters
MAX_OBJECT_CHARS = 80
MAX_EVIDENCE_CHARS = 300


class FactSet(BaseModel):
    """Facts about one item, as validated from an LLM answer."""

    model_config = ConfigDict(extra="forbid")

    facts: list[Any]


def _fact_class(name: str, tails: list[str]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "relation": (Literal[name], Field(description="relation name")),
        "object": (str, Field(min_length=1, max_length=MAX_OBJECT_CHARS, description="entity name")),
        "object_type": (Literal[tuple(tails)], Field(description="entity type")),
        # range is checked semantically (validate.check_answer): grammar-constrained decoders
        # do not enforce number bounds, and a bad confidence should not cost the whole answer
        "confidence": (float | None, Field(default=None)),
        "evidence": (str | None, Field(default=None, max_length=MAX_EVIDENCE_CHARS)),
    }
    return create_model(f"Fact_{name}", __config__=ConfigDict(extra="ignore"), **fields)


def build_fact_model(ontology: Ontology, *, head: str = "Item") -> type[BaseModel]:
    """A pydantic model ``{"facts": [...]}`` whose items are a union discriminated on ``relation``."""
    return _build_fact_model_cached(ontology.model_dump_json(), head)


@lru_cache(maxsize=32)
def _build_fact_model_cached(ontology_json: str, head: str) -> type[BaseModel]:
    ontology = Ontology.model_validate_json(ontology_json)
    relations = {n: r for n, r in ontology.relations.items() if r.head == head}
    if not relations:
        raise ValueError(f"ontology {ontology.name!r} declares no relation with head {head!r}")
    classes = [_fact_class(name, rel.tail) for name, rel in relations.items()]
    if len(classes) == 1:
        item_type: Any = classes[0]
    else:
        item_type = Annotated[Union[tuple(classes)], Field(discriminator="relation")]  # noqa: UP007
    limit = max_facts(ontology, head=head)
    return create_model(
        f"{ontology.name.title()}{head}Facts",
        __config__=ConfigDict(extra="forbid"),
        facts=(list[item_type], Field(default_factory=list, max_length=limit)),
    )


def max_facts(ontology: Ontology, *, head: str = "Item", cap: int = 24) -> int:
    """Upper bound on facts per answer: the sum of ``max_per_item``, capped to keep answers short."""
    total = sum(r.max_per_item for r in ontology.relations.values() if r.head == head)
    return max(1, min(total, cap))


def fact_json_schema(
    ontology: Ontology, *, head: str = "Item", max_items: int | None = None
) -> dict[str, Any]:
    """The JSON Schema sent to the endpoint for structured output."""
    variants = []
    for name, rel in ontology.relations.items():
        if rel.head != head:
            continue
        variants.append(
            {
                "type": "object",
                "properties": {
                    "relation": {"type": "string", "enum": [name]},
                    "object": {"type": "string", "minLength": 1, "maxLength": MAX_OBJECT_CHARS},
                    "object_type": {"type": "string", "enum": list(rel.tail)},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["relation", "object", "object_type", "confidence"],
                "additionalProperties": False,
            }
        )
    limit = max_items if max_items is not None else max_facts(ontology, head=head)
    items: dict[str, Any] = variants[0] if len(variants) == 1 else {"anyOf": variants}
    return {
        "type": "object",
        "properties": {"facts": {"type": "array", "items": items, "maxItems": limit}},
        "required": ["facts"],
        "additionalProperties": False,
    }


def ontology_prompt_text(ontology: Ontology, *, head: str = "Item") -> str:
    """The ontology rendered for a prompt: relation names, their meaning and allowed object types."""
    lines = ["Relations you may use (relation -> allowed object_type):"]
    for name, rel in ontology.relations.items():
        if rel.head != head:
            continue
        lines.append(
            f"- {name} -> {' | '.join(rel.tail)}: {rel.description.strip()} (at most {rel.max_per_item})"
        )
    lines.append("Entity types:")
    used = {t for r in ontology.relations.values() if r.head == head for t in r.tail}
    for name, ent in ontology.entity_types.items():
        if name not in used:
            continue
        line = f"- {name}: {ent.description.strip()}"
        if ent.vocabulary:
            line += f" Allowed names: {', '.join(ent.vocabulary)}."
        elif ent.examples:
            line += f" Examples: {', '.join(ent.examples)}."
        lines.append(line)
    return "\n".join(lines)
