"""The Cypher library: every statement lives in cypher/, identifiers are guarded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kg_enhance.graph.cypher import CypherLibrary

REPO = Path(__file__).resolve().parents[2]
LIB = CypherLibrary(REPO / "cypher")


def test_templates_render_with_backticked_identifiers() -> None:
    q = LIB.get("write/merge_item_facts", rel_type="DIRECTED_BY")
    assert ":`DIRECTED_BY`" in q and "{{" not in q
    q = LIB.get("write/merge_entities", entity_label="Person")
    assert ":`Person`" in q and "{{" not in q


@pytest.mark.parametrize("bad", ["Person`) DETACH DELETE n //", "A B", "", "1abc", "Per-son"])
def test_hostile_identifiers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="refusing identifier"):
        LIB.get("write/merge_entities", entity_label=bad)
    with pytest.raises(ValueError, match="refusing identifier"):
        LIB.get("write/merge_item_facts", rel_type=bad)


def test_missing_or_extra_identifiers_are_refused() -> None:
    with pytest.raises(ValueError, match="needs identifiers"):
        LIB.get("write/merge_item_facts", entity_label="Person")
    with pytest.raises(ValueError, match="needs identifiers"):
        LIB.get("write/merge_item_facts")


def test_names_cannot_escape_the_folder() -> None:
    with pytest.raises(ValueError, match="escapes"):
        LIB.raw("../pyproject")


def test_no_cypher_in_python_sources() -> None:
    """Cypher stays in cypher/: no MATCH/MERGE/CREATE statements in Python string literals."""
    pattern = re.compile(r"[\"'](\s*)(MATCH|MERGE|UNWIND|CREATE (CONSTRAINT|INDEX))\b")
    offenders = [
        str(p.relative_to(REPO)) for p in (REPO / "kg_enhance").rglob("*.py") if pattern.search(p.read_text())
    ]
    assert offenders == []


def test_every_statement_parameterises_data() -> None:
    for name in LIB.names():
        text = LIB.raw(name)
        assert "+ $" not in text.replace("'item:' + ", "").replace("'user:' + ", "").replace(
            "'entity:' + ", ""
        )
