"""Extraction quality: the LLM's item facts against a gold source, without any graph.

Names are compared by :func:`kg_enhance.names.normalise_name` only (case, punctuation,
leading articles), not by entity resolution, so the figures say what the extraction
itself got right. Only what the gold source can judge is scored:

* a gold source *covers* a relation on an item when it states at least one fact of that
  relation about it; an LLM fact is *checkable* when its item and relation are covered,
  and only the items the LLM was asked about (and answered) count;
* **per relation**: precision = checkable LLM facts that the gold source also states
  (same item, relation and normalised name) / checkable LLM facts; recall = those
  matches / gold facts of the LLM's items; F1 their harmonic mean (null where a
  denominator is 0); ``overall`` sums the counts over the relations (micro average);
* **per entity type**: the same with the fact's type: an LLM fact of type T matches only a
  gold fact of type T (a right name with a wrong type is a miss here, not per relation);
  recall is over the gold facts of type T;
* **type confusion**: for every LLM fact whose normalised name the gold source states
  about the same item (in any relation), the gold type(s) of that name against the type
  the LLM gave: ``{llm type: {gold type: count}}``, and how many of those names had
  another type.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from kg_enhance.names import normalise_name
from kg_enhance.types import Fact


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def f1_score(precision: float | None, recall: float | None) -> float | None:
    """The harmonic mean of precision and recall; null when either is unknown, 0 when both are 0."""
    if precision is None or recall is None:
        return None
    return round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0


def _scores(llm: int, gold: int, matched: int) -> dict[str, Any]:
    precision, recall = _ratio(matched, llm), _ratio(matched, gold)
    return {
        "llm_facts": llm,
        "gold_facts": gold,
        "matched": matched,
        "precision": precision,
        "recall": recall,
        "f1": f1_score(precision, recall),
    }


def score_extraction(
    llm_facts: Iterable[Fact], gold_facts: Iterable[Fact], *, items: Iterable[str]
) -> dict[str, Any]:
    """Precision, recall and F1 of ``llm_facts`` against ``gold_facts`` on ``items`` (the subjects the LLM
    answered about), per relation, per entity type and overall, with the type confusion (module doc)."""
    scope = set(items)
    gold: set[tuple[str, str, str, str]] = set()  # (item, relation, name key, type)
    for f in gold_facts:
        if f.head_kind == "Item" and f.head_id in scope and normalise_name(f.object):
            gold.add((f.head_id, f.relation, normalise_name(f.object), f.object_type))
    llm: set[tuple[str, str, str, str]] = set()
    for f in llm_facts:
        if f.head_kind == "Item" and f.head_id in scope and normalise_name(f.object):
            llm.add((f.head_id, f.relation, normalise_name(f.object), f.object_type))
    covered = {(i, r) for i, r, _, _ in gold}
    checkable = {fact for fact in llm if (fact[0], fact[1]) in covered}
    gold_by_relation = {(i, r, k) for i, r, k, _ in gold}
    relations = sorted({r for _, r, _, _ in gold})

    by_relation: dict[str, Any] = {}
    for relation in relations:
        predicted = {(i, r, k) for i, r, k, _ in checkable if r == relation}
        truth = {fact for fact in gold_by_relation if fact[1] == relation}
        by_relation[relation] = {
            "items": len({i for i, r in covered if r == relation}),
            **_scores(len(predicted), len(truth), len(predicted & truth)),
        }
    by_type: dict[str, Any] = {}
    for type_ in sorted({t for *_, t in gold} | {t for *_, t in checkable}):
        predicted_t = {fact for fact in checkable if fact[3] == type_}
        truth_t = {fact for fact in gold if fact[3] == type_}
        by_type[type_] = _scores(len(predicted_t), len(truth_t), len(predicted_t & truth_t))

    gold_types: dict[tuple[str, str], set[str]] = defaultdict(set)
    for i, _, k, t in gold:
        gold_types[(i, k)].add(t)
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    named, wrong_type = 0, 0
    for i, _, k, t in sorted(llm):
        types = gold_types.get((i, k))
        if not types:
            continue
        named += 1
        wrong_type += t not in types
        for gold_type in sorted(types):
            confusion[t][gold_type] += 1

    predicted_all = {(i, r, k) for i, r, k, _ in checkable}
    overall = _scores(len(predicted_all), len(gold_by_relation), len(predicted_all & gold_by_relation))
    return {
        "items": len(scope),
        "items_with_gold": len({i for i, _ in covered}),
        "overall": overall,
        #: LLM facts about the items in scope that the gold source cannot judge (relation or item not covered)
        "unchecked_llm_facts": len(llm) - len(checkable),
        "by_relation": by_relation,
        "by_type": by_type,
        "type_confusion": {t: dict(sorted(c.items())) for t, c in sorted(confusion.items())},
        "names_in_gold": named,
        "names_with_other_type": wrong_type,
    }
