"""Canonical entity keys (the first step of entity resolution)."""

from __future__ import annotations

from kg_enhance.extract.validate import normalise_name


def entity_key(object_type: str, name: str) -> str:
    """``<Type>:<normalised name>``: NFKC, casefold, punctuation and leading articles removed."""
    return f"{object_type}:{normalise_name(name)}"
