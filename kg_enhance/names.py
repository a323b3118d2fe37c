"""Names in one place: name normalisation, entity keys and node labels.

* :func:`normalise_name` is the canonical form of a name (the entity-key suffix);
  :func:`clean_name` is the display form stored on nodes.
* An entity key is ``<Type>:<normalised name>`` (:func:`entity_key`).
* Graph nodes outside Neo4j (KGE triples, RecBole files, exports) are labelled
  ``item:<item_id>``, ``user:<user_id>`` and ``entity:<entity key>``
  (:func:`node_label`, :func:`split_node_label`); nothing else cuts these prefixes.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

NodeKind = Literal["item", "user", "entity"]
ITEM: NodeKind = "item"
USER: NodeKind = "user"
ENTITY: NodeKind = "entity"
NODE_KINDS: tuple[NodeKind, ...] = (ITEM, USER, ENTITY)

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_LEADING_ARTICLE = re.compile(r"^(the|a|an)\s+", re.IGNORECASE)
_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


def normalise_name(text: str) -> str:
    """Canonical key of a name: NFKC, casefold, no punctuation, single spaces, no leading article."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCT.sub(" ", text)
    text = _WS.sub(" ", text).strip()
    return _LEADING_ARTICLE.sub("", text)


def clean_name(text: str) -> str:
    """A display name: NFKC, control characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_CONTROL)
    return _WS.sub(" ", text).strip().strip("\"'`")


def entity_key(object_type: str, name: str) -> str:
    """``<Type>:<normalised name>``: NFKC, casefold, punctuation and leading articles removed."""
    return f"{object_type}:{normalise_name(name)}"


def split_entity_key(key: str) -> tuple[str, str]:
    """``"Genre:comedy"`` -> ``("Genre", "comedy")``."""
    type_, _, norm = key.partition(":")
    return type_, norm


def node_label(kind: NodeKind, anchor: str) -> str:
    """The label of a graph node outside Neo4j: ``item:1``, ``user:7``, ``entity:Genre:comedy``."""
    return f"{kind}:{anchor}"


def split_node_label(label: str) -> tuple[str, str]:
    """``"item:1"`` -> ``("item", "1")``; ``"entity:Genre:comedy"`` -> ``("entity", "Genre:comedy")``."""
    kind, _, anchor = label.partition(":")
    return kind, anchor


def anchor_of(label: str, kind: NodeKind) -> str | None:
    """The anchor of ``label`` when it is a node of ``kind``, else ``None``."""
    got, anchor = split_node_label(label)
    return anchor if got == kind else None
