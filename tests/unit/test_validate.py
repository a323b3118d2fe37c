"""Parsing, repair and semantic checks of LLM answers (property-based where it pays)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kg_enhance.extract.validate import check_answer, drop_reason, parse_json_lenient, recheck_cached
from kg_enhance.names import clean_name, normalise_name
from kg_enhance.ontology import build_fact_model, load_ontology

REPO = Path(__file__).resolve().parents[2]
MOVIES = load_ontology(REPO / "schemas" / "movies.yaml")
MODEL = build_fact_model(MOVIES)
VOCAB = {"Genre": MOVIES.entity_types["Genre"].vocabulary or []}


def check(text: str, **kw: object):  # type: ignore[no-untyped-def]
    args = {
        "item_title": "Heat (1995)",
        "item_text": "Heat (1995). Genres: Action|Crime|Thriller",
        "grounding": "world",
        "vocabularies": VOCAB,
    }
    args.update(kw)
    return check_answer(text, MODEL, **args)  # type: ignore[arg-type]


def fact(rel: str, obj: str, typ: str, conf: float = 0.9) -> dict:
    return {"relation": rel, "object": obj, "object_type": typ, "confidence": conf}


def test_valid_answer() -> None:
    out = check(
        json.dumps(
            {"facts": [fact("DIRECTED_BY", "Michael Mann", "Person"), fact("HAS_GENRE", "crime", "Genre")]}
        )
    )
    assert out.errors == [] and out.dropped == []
    assert [(f["relation"], f["object"]) for f in out.facts] == [
        ("DIRECTED_BY", "Michael Mann"),
        ("HAS_GENRE", "Crime"),
    ]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (
            '{"facts": [{"relation": "DIRECTED_BY", "object": "Mich',
            "ends before the JSON is complete (truncated)",
        ),
        ("Sure! Here are facts", "answer holds no JSON object or array"),
        # garbage with braces is broken JSON, not a truncated answer
        ("{{{{ zzz", "not valid JSON: Expecting property name enclosed in double quotes at character 1"),
        ('{"facts": [1, 2,, 3]}', "not valid JSON: Expecting value at character 16 of 21"),
        ('{"facts": "none"}', "facts"),
        ('{"facts": [{"relation": "LOVES", "object": "x", "object_type": "Person"}]}', "facts.0"),
        ('{"facts": [{"relation": "DIRECTED_BY", "object": 5, "object_type": "Person"}]}', "facts.0"),
        ('"just a string"', "expected a JSON object"),
    ],
)
def test_broken_answers_are_errors(raw: str, error: str) -> None:
    out = check(raw)
    assert out.facts == []
    assert any(error in e for e in out.errors), out.errors


def test_code_fences_and_prose_are_repaired() -> None:
    body = json.dumps({"facts": [fact("PRODUCED_IN", "USA", "Country")]})
    assert check(f"```json\n{body}\n```").facts[0]["object"] == "USA"
    assert check(f"Here you go: {body} Hope it helps").facts[0]["object"] == "USA"


def test_bare_array_is_accepted_as_facts() -> None:
    out = check(json.dumps([fact("PRODUCED_IN", "USA", "Country")]))
    assert out.errors == [] and len(out.facts) == 1


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ([fact("STARRING", "Heat", "Person")], "self-loop"),
        ([fact("STARRING", "Al Pacino", "Person"), fact("STARRING", "al  pacino", "Person")], "duplicate"),
        ([fact("HAS_GENRE", "Space Opera", "Genre")], "vocabulary"),
        ([fact("HAS_THEME", "Genres: Action", "Theme")], "field: value"),
        ([fact("STARRING", "   ", "Person")], "empty"),
    ],
)
def test_semantic_drops_are_reported(facts: list, reason: str) -> None:
    out = check(json.dumps({"facts": facts}))
    assert out.errors == []
    assert any(reason in d for d in out.dropped), out.dropped


def test_out_of_range_confidence_keeps_the_fact() -> None:
    out = check(json.dumps({"facts": [fact("PRODUCED_IN", "USA", "Country", conf=10)]}))
    assert out.facts[0]["confidence"] is None
    assert "outside [0, 1]" in out.dropped[0]


def test_text_grounding() -> None:
    body = json.dumps(
        {"facts": [fact("HAS_GENRE", "Crime", "Genre"), fact("DIRECTED_BY", "Michael Mann", "Person")]}
    )
    out = check(body, grounding="text")
    assert [f["object"] for f in out.facts] == ["Crime"]
    assert any("grounding=text" in d for d in out.dropped)


def test_injection_strings_are_plain_data() -> None:
    hostile = "x'}) DETACH DELETE n //"
    out = check(json.dumps({"facts": [fact("HAS_THEME", hostile, "Theme")]}))
    assert out.facts[0]["object"] == hostile


@given(st.text(max_size=60))
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise_name(text)
    assert normalise_name(once) == once


@given(st.text(max_size=60))
def test_clean_name_has_no_control_chars(text: str) -> None:
    assert not any(ord(c) < 32 and c not in "\t\n\r" for c in clean_name(text))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=10,
    )
)
def test_lenient_parser_roundtrips_json(value: object) -> None:
    if isinstance(value, (dict, list)):
        assert parse_json_lenient(json.dumps(value)) == value


@given(st.text(max_size=200))
def test_check_never_raises(text: str) -> None:
    out = check(text)
    assert out.errors or out.facts is not None


def test_vocabulary_name_under_another_allowed_type_is_retyped() -> None:
    user_model = build_fact_model(MOVIES, head="User")
    answer = json.dumps({"facts": [fact("PREFERS", "sci fi", "Theme"), fact("PREFERS", "space", "Theme")]})
    got = check_answer(
        answer,
        user_model,
        item_title=None,
        item_text="Tag: sci-fi; space",
        grounding="text",
        vocabularies=VOCAB,
        allowed_types={"PREFERS": ["Genre", "Theme", "Person"]},
    )
    assert not got.errors
    assert [(f["object"], f["object_type"]) for f in got.facts] == [("Sci-Fi", "Genre"), ("space", "Theme")]
    assert got.dropped == ["PREFERS 'sci fi': retyped Theme -> Genre (fact kept)"]


def test_single_bare_fact_object_is_accepted() -> None:
    got = check(json.dumps(fact("DIRECTED_BY", "Michael Mann", "Person")))
    assert not got.errors and [f["object"] for f in got.facts] == ["Michael Mann"]


@given(st.text(max_size=60))
def test_fulltext_query_is_safe_lucene(text: str) -> None:
    from kg_enhance.graph.resolve import fulltext_query

    query = fulltext_query(normalise_name(text))
    assert not set(query) & set('+-&|!(){}[]^"*?:\\/')  # only terms, spaces and '~' edits


def test_similarity_guards() -> None:
    from kg_enhance.graph.resolve import compatible, similarity

    assert similarity("steven spielberg", "spielberg steven") == 1.0
    assert not compatible("rocky ii", "rocky iii", min_chars=6)
    assert not compatible("usa", "us", min_chars=6)
    assert compatible("apollo 13 mission", "apollo 13 misson", min_chars=6)


NEWS_TEXT = "Apple opens a store in Paris. Text: Tim Cook said the Paris store opens on Friday."


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Tim Cook said the Paris store opens.", "sentence"),  # ends like a sentence
        ("Apple opens a store in Paris on a sunny Friday morning", "sentence"),  # more than 8 words
        ('{"object": "Paris"', "json_punctuation"),
        ("[Paris]", "json_punctuation"),
        ('Tim "the" Cook', "json_punctuation"),
        ("Berlin", "not_in_text"),
    ],
)
def test_text_grounding_drops_sentences_json_fragments_and_names_not_in_the_text(
    name: str, reason: str
) -> None:
    answer = json.dumps(
        {"facts": [fact("DIRECTED_BY", name, "Person"), fact("STARRING", "Tim Cook", "Person")]}
    )
    out = check(answer, item_title="Store opening", item_text=NEWS_TEXT, grounding="text")
    assert [f["object"] for f in out.facts] == ["Tim Cook"]
    assert len(out.dropped) == 1 and drop_reason(out.dropped[0]) == reason
    # under world grounding the LLM may name what the text does not say: only the old checks apply
    world = check(answer, item_title="Store opening", item_text=NEWS_TEXT, grounding="world")
    assert len(world.facts) == (1 if reason == "json_punctuation" and ":" in name else 2)


def test_short_names_with_a_full_stop_are_names_not_sentences() -> None:
    text = "Iron Man. Text: Robert Downey Jr. plays Tony Stark for Marvel Studios Inc."
    answer = json.dumps(
        {"facts": [fact("STARRING", "Robert Downey Jr.", "Person"), fact("STARRING", "Tony Stark", "Person")]}
    )
    out = check(answer, item_title="Iron Man", item_text=text, grounding="text")
    assert [f["object"] for f in out.facts] == ["Robert Downey Jr.", "Tony Stark"] and out.dropped == []


def test_every_drop_note_maps_to_its_reason_and_kept_notes_to_none() -> None:
    assert drop_reason("DIRECTED_BY 'Heat': the item itself (self-loop)") == "self_loop"
    assert drop_reason("HAS_GENRE 'Space': not in the Genre vocabulary") == "off_vocabulary"
    assert drop_reason("HAS_THEME 'x': retyped Theme -> Genre (fact kept)") is None
    assert drop_reason("HAS_THEME 'x': confidence 3 outside [0, 1], ignored (fact kept)") is None
    assert drop_reason("HAS_THEME 'x': something new") == "other"


def test_answers_cached_before_a_check_existed_get_it_on_reading() -> None:
    cached = [
        fact("STARRING", "Tim Cook", "Person"),
        fact("STARRING", "Tim Cook said the store opens.", "Person"),
    ]
    kept, notes = recheck_cached(cached, item_text=NEWS_TEXT, grounding="text")
    assert [f["object"] for f in kept] == ["Tim Cook"] and [drop_reason(n) for n in notes] == ["sentence"]
    assert recheck_cached(cached, item_text=NEWS_TEXT, grounding="world") == (cached, [])
