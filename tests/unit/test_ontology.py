"""Ontology validation and the output model / JSON Schema built from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kg_enhance.errors import ConfigError
from kg_enhance.ontology import build_fact_model, fact_json_schema, load_ontology, ontology_prompt_text
from kg_enhance.ontology.models import Ontology

REPO = Path(__file__).resolve().parents[2]
MOVIES = load_ontology(REPO / "schemas" / "movies.yaml")


def test_movies_ontology_loads() -> None:
    assert MOVIES.item.label == "Movie"
    assert set(MOVIES.item_relations()) >= {"DIRECTED_BY", "HAS_GENRE", "PRODUCED_IN"}
    text = ontology_prompt_text(MOVIES)
    assert "DIRECTED_BY -> Person" in text and "Sci-Fi" in text


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"entity_types": {"person": {"description": "lower case"}}}, "must match"),
        ({"relations": {"directed by": {"description": "space", "tail": "Person"}}}, "must match"),
        (
            {"relations": {"DIRECTED_BY": {"description": "bad tail", "tail": "Robot"}}},
            "not a declared entity type",
        ),
        ({"relations": {"INTERACTED": {"description": "reserved", "tail": "Person"}}}, "reserved"),
        ({"entity_types": {"Item": {"description": "reserved label"}}}, "clashes"),
        ({"entity_types": {"Person`) DETACH DELETE n //": {"description": "injection"}}}, "must match"),
    ],
)
def test_invalid_ontologies_are_rejected(patch: dict, message: str) -> None:
    base = {
        "name": "x",
        "entity_types": {"Person": {"description": "a person"}},
        "relations": {"DIRECTED_BY": {"description": "directed", "tail": "Person"}},
    }
    for key, value in patch.items():
        base[key] = {**base[key], **value}
    with pytest.raises(ValidationError, match=message):
        Ontology.model_validate(base)


def test_ontology_file_error_names_file(tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text("name: x\nentity_types: {}\nrelations: {}\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_ontology(path)


def test_fact_model_rejects_wrong_object_type_and_unknown_relation() -> None:
    model = build_fact_model(MOVIES)
    ok = model.model_validate(
        {"facts": [{"relation": "DIRECTED_BY", "object": "Jane Campion", "object_type": "Person"}]}
    )
    assert ok.facts[0].object == "Jane Campion"
    with pytest.raises(ValidationError):
        model.model_validate(
            {"facts": [{"relation": "DIRECTED_BY", "object": "USA", "object_type": "Country"}]}
        )
    with pytest.raises(ValidationError):
        model.model_validate({"facts": [{"relation": "LIKES", "object": "x", "object_type": "Person"}]})


def _fact_strategy(ontology: Ontology) -> st.SearchStrategy[dict]:
    options = [(name, tail) for name, rel in ontology.item_relations().items() for tail in rel.tail]
    return st.sampled_from(options).flatmap(
        lambda pair: st.fixed_dictionaries(
            {
                "relation": st.just(pair[0]),
                "object": st.text(min_size=1, max_size=80),
                "object_type": st.just(pair[1]),
                "confidence": st.floats(min_value=0, max_value=1),
            }
        )
    )


@settings(max_examples=60)
@given(st.data())
def test_every_schema_valid_answer_passes_the_model(data: st.DataObject) -> None:
    """The JSON Schema sent to the endpoint never admits what the validator then rejects."""
    schema = fact_json_schema(MOVIES)
    limit = schema["properties"]["facts"]["maxItems"]
    facts = data.draw(st.lists(_fact_strategy(MOVIES), max_size=limit))
    build_fact_model(MOVIES).model_validate({"facts": facts})


def test_schema_is_strict_mode_compatible() -> None:
    """OpenAI strict mode: every object closes additionalProperties and requires all its properties."""
    schema = fact_json_schema(MOVIES)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node["additionalProperties"] is False
                assert set(node["required"]) == set(node["properties"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
