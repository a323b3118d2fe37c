"""The ontology file format: entity types and relation patterns.

An ontology is the only place labels and relationship types come from. Names are
validated here once, so later code may safely place them in Cypher templates.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kg_enhance.config.loader import load_yaml_model, suggest

ENTITY_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{0,39}$")
RELATION_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")

#: labels and relationship types the graph model itself uses; an ontology may not redefine them
RESERVED_LABELS = frozenset({"Item", "User", "Entity", "Alias", "KgLock", "Resource", "Node"})
RESERVED_RELATIONS = frozenset({"INTERACTED", "RECOMMENDED", "ALIAS_OF", "SAME_AS"})

#: node kinds a relation may start from
HEAD_KINDS = ("Item", "User")


class EntityType(BaseModel):
    """One kind of entity the LLM may name, e.g. ``Person`` or ``Genre``."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(description="What this type means; goes into the prompt verbatim.", min_length=3)
    vocabulary: list[str] | None = Field(
        default=None,
        description="Optional closed list of allowed names (e.g. the genre list). Seeds entity resolution.",
    )
    examples: list[str] = Field(default_factory=list, description="Example names shown to the LLM.")


class RelationType(BaseModel):
    """A relationship type with its allowed (head, tail) pattern."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(
        description="What the relation means; goes into the prompt verbatim.", min_length=3
    )
    head: Literal["Item", "User"] | str = Field(
        default="Item",
        description="Head node kind: 'Item', 'User', or an entity type for entity-to-entity facts.",
    )
    tail: list[str] = Field(description="Entity types allowed as the object of this relation.", min_length=1)
    max_per_item: int = Field(
        default=5, ge=1, le=50, description="At most this many facts of this relation per item."
    )

    @field_validator("tail", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class ItemSpec(BaseModel):
    """How catalog items appear in the graph and the prompt."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="Product", description="Extra label on :Item nodes, e.g. 'Movie'.")
    description: str = Field(
        default="An item of the catalog.", description="What an item is; used in prompts."
    )

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not ENTITY_NAME.match(value) or value in RESERVED_LABELS:
            raise ValueError(
                f"item label {value!r} must be CamelCase letters/digits and not one of {sorted(RESERVED_LABELS)}"
            )
        return value


class Ontology(BaseModel):
    """Root model of an ontology file (``schemas/*.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = Field(default=1, description="Ontology file format version.")
    name: str = Field(description="Short name of the ontology, e.g. 'movies'.", min_length=1)
    description: str = Field(default="", description="Free text for people; not sent to the LLM.")
    item: ItemSpec = Field(
        default_factory=ItemSpec, description="How catalog items are labelled and described."
    )
    entity_types: dict[str, EntityType] = Field(description="Entity types by name (CamelCase).", min_length=1)
    relations: dict[str, RelationType] = Field(
        description="Relation types by name (UPPER_SNAKE).", min_length=1
    )

    @model_validator(mode="after")
    def _names_and_patterns(self) -> Ontology:
        problems = self.problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def problems(self) -> list[str]:
        """Every naming and reference problem, one ``dotted.key: message`` line each (all at once,
        with a suggestion for a misspelt type)."""
        problems: list[str] = []
        types = sorted(self.entity_types)
        for name in self.entity_types:
            if not ENTITY_NAME.match(name):
                problems.append(
                    f"entity_types.{name}: entity type {name!r} must match {ENTITY_NAME.pattern} "
                    "(CamelCase, max 40 chars)"
                )
            elif name in RESERVED_LABELS or name == self.item.label:
                problems.append(
                    f"entity_types.{name}: entity type {name!r} clashes with a label the graph model reserves "
                    f"({', '.join(sorted(RESERVED_LABELS | {self.item.label}))}); rename it"
                )
        for name, rel in self.relations.items():
            if not RELATION_NAME.match(name):
                problems.append(
                    f"relations.{name}: relation {name!r} must match {RELATION_NAME.pattern} (UPPER_SNAKE, max 40 chars)"
                )
            elif name in RESERVED_RELATIONS:
                problems.append(
                    f"relations.{name}: relation {name!r} is reserved by the graph model; pick another name"
                )
            if rel.head not in HEAD_KINDS and rel.head not in self.entity_types:
                problems.append(
                    f"relations.{name}.head: {rel.head!r} is neither Item, User nor a declared entity type"
                    + suggest(rel.head, [*HEAD_KINDS, *types])
                )
            for tail in rel.tail:
                if tail not in self.entity_types:
                    problems.append(
                        f"relations.{name}.tail: {tail!r} is not a declared entity type"
                        + (suggest(tail, types) or f" ({', '.join(types)})")
                    )
        return problems

    # -- derived views -------------------------------------------------------------------------
    def item_relations(self) -> dict[str, RelationType]:
        """Relations whose head is the catalog item: what item prompts ask for."""
        return {name: rel for name, rel in self.relations.items() if rel.head == "Item"}

    def user_relations(self) -> dict[str, RelationType]:
        return {name: rel for name, rel in self.relations.items() if rel.head == "User"}

    def fingerprint(self) -> str:
        """Stable hash of the ontology's content; part of every extraction cache key."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def check_label(self, label: str) -> str:
        """Return ``label`` if it is a declared entity type, else raise: the guard in front of Cypher templates."""
        if label not in self.entity_types:
            raise KeyError(f"{label!r} is not an entity type of ontology {self.name!r}")
        return label

    def check_relation(self, relation: str) -> str:
        if relation not in self.relations:
            raise KeyError(f"{relation!r} is not a relation of ontology {self.name!r}")
        return relation


def load_ontology(path: str | Path) -> Ontology:
    """Read and validate an ontology YAML file; errors name the file and key path."""
    return load_yaml_model(Path(path), Ontology, kind="ontology")
