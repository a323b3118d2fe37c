"""The extraction-quality scorer on a constructed case whose figures were worked out by hand."""

from __future__ import annotations

import pytest

from kg_enhance.extract.quality import f1_score, score_extraction
from kg_enhance.types import Fact


def fact(item: str, relation: str, name: str, type_: str, source: str, head_kind: str = "Item") -> Fact:
    return Fact(
        head_id=item, relation=relation, object=name, object_type=type_, source=source, head_kind=head_kind
    )


GOLD = [
    fact("1", "DIRECTED_BY", "Jane Campion", "Person", "g"),
    fact("1", "HAS_GENRE", "Drama", "Genre", "g"),
    fact("1", "HAS_GENRE", "Romance", "Genre", "g"),
    fact("1", "PRODUCED_IN", "New Zealand", "Country", "g"),
    fact("2", "DIRECTED_BY", "Ridley Scott", "Person", "g"),
    fact("2", "HAS_GENRE", "Sci-Fi", "Genre", "g"),
    fact("3", "HAS_GENRE", "Comedy", "Genre", "g"),  # item 3 was not extracted: out of scope
]
LLM = [
    fact("1", "DIRECTED_BY", "jane  campion", "Person", "llm"),  # match after normalisation
    fact("1", "HAS_GENRE", "Drama", "Genre", "llm"),  # match
    fact("1", "HAS_GENRE", "Thriller", "Genre", "llm"),  # checkable, wrong
    fact("1", "HAS_THEME", "New Zealand", "Theme", "llm"),  # unchecked; a gold name with another type
    fact("2", "DIRECTED_BY", "Ridley Scott.", "Person", "llm"),  # match (punctuation)
    fact("2", "HAS_GENRE", "sci-fi", "Theme", "llm"),  # match per relation, wrong type
    fact("2", "STARRING", "Sigourney Weaver", "Person", "llm"),  # unchecked: relation not covered
    fact("2", "PRODUCED_IN", "USA", "Country", "llm"),  # unchecked: item 2 has no gold PRODUCED_IN
    fact("3", "HAS_GENRE", "Comedy", "Genre", "llm"),  # out of scope
    fact("u1", "PREFERS", "Drama", "Genre", "llm", head_kind="User"),  # user facts are not scored
]


def test_scores_per_relation_type_and_overall_match_the_hand_computed_figures() -> None:
    q = score_extraction(LLM, GOLD, items=["1", "2"])
    # checkable: 1 DIRECTED_BY, 1 Drama, 1 Thriller, 2 DIRECTED_BY, 2 sci-fi = 5; 4 of them in gold;
    # gold facts of items 1 and 2: 6. P = 4/5, R = 4/6, F1 = 2PR/(P+R) = 0.7273
    assert q["overall"] == {
        "llm_facts": 5,
        "gold_facts": 6,
        "matched": 4,
        "precision": 0.8,
        "recall": 0.6667,
        "f1": 0.7273,
    }
    assert q["items"] == 2 and q["items_with_gold"] == 2 and q["unchecked_llm_facts"] == 3
    rel = q["by_relation"]
    assert set(rel) == {"DIRECTED_BY", "HAS_GENRE", "PRODUCED_IN"}
    assert rel["DIRECTED_BY"] == {
        "items": 2,
        "llm_facts": 2,
        "gold_facts": 2,
        "matched": 2,
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
    }
    assert rel["HAS_GENRE"] == {
        "items": 2,
        "llm_facts": 3,
        "gold_facts": 3,
        "matched": 2,
        "precision": 0.6667,
        "recall": 0.6667,
        "f1": 0.6667,
    }
    # covered but nothing predicted: precision unknown, recall 0
    assert rel["PRODUCED_IN"] == {
        "items": 1,
        "llm_facts": 0,
        "gold_facts": 1,
        "matched": 0,
        "precision": None,
        "recall": 0.0,
        "f1": None,
    }
    typ = q["by_type"]
    assert set(typ) == {"Person", "Genre", "Country", "Theme"}
    assert (typ["Person"]["precision"], typ["Person"]["recall"]) == (1.0, 1.0)
    # per type a right name with the wrong type is a miss: Genre has Drama right of Drama, Thriller
    assert typ["Genre"] == {
        "llm_facts": 2,
        "gold_facts": 3,
        "matched": 1,
        "precision": 0.5,
        "recall": 0.3333,
        "f1": 0.4,
    }
    assert typ["Theme"] == {
        "llm_facts": 1,
        "gold_facts": 0,
        "matched": 0,
        "precision": 0.0,
        "recall": None,
        "f1": None,
    }
    # names the gold source states about the same item: Jane Campion, Drama, New Zealand, Ridley Scott, Sci-Fi
    assert q["names_in_gold"] == 5 and q["names_with_other_type"] == 2
    assert q["type_confusion"] == {
        "Genre": {"Genre": 1},
        "Person": {"Person": 2},
        "Theme": {"Country": 1, "Genre": 1},
    }


def test_no_llm_facts_and_no_gold_give_nulls_not_errors() -> None:
    q = score_extraction([], GOLD, items=["1"])
    assert q["overall"]["precision"] is None and q["overall"]["recall"] == 0.0 and q["overall"]["f1"] is None
    empty = score_extraction(LLM, [], items=["1", "2"])
    assert empty["overall"] == {
        "llm_facts": 0,
        "gold_facts": 0,
        "matched": 0,
        "precision": None,
        "recall": None,
        "f1": None,
    }
    assert empty["unchecked_llm_facts"] == 8  # every fact about items 1 and 2 and empty["by_relation"] == {}


@pytest.mark.parametrize(("p", "r", "f"), [(None, 0.5, None), (0.0, 0.0, 0.0), (1.0, 0.5, 0.6667)])
def test_f1(p: float | None, r: float | None, f: float | None) -> None:
    assert f1_score(p, r) == f
