"""Graph statistics and quality measures for the report's ``graph`` section.

* degree distributions of entities (items per entity) and items (entities per item);
* duplicate candidates: entity pairs of one type whose names are similar, found
  through the full-text index (never all pairs);
* LLM facts against a gold source, per relation: precision on the items and
  relations the gold source covers, recall over the gold facts of the items the LLM saw.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from kg_enhance.graph.resolve import Resolution, compatible, fulltext_query, similarity
from kg_enhance.graph.store import GraphStore
from kg_enhance.names import entity_key, split_entity_key
from kg_enhance.types import Fact

DEGREE_BUCKETS = ((1, 1), (2, 4), (5, 9), (10, 49), (50, None))


def distribution(values: Sequence[int]) -> dict[str, Any]:
    """Summary of a degree list: count, mean, percentiles and fixed buckets."""
    if not values:
        return {"count": 0}
    arr = np.asarray(values)
    buckets = {}
    for lo, hi in DEGREE_BUCKETS:
        label = f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi else f"{lo}+")
        buckets[label] = int(((arr >= lo) & (arr <= (hi if hi else arr.max()))).sum())
    return {
        "count": len(values),
        "zero": int((arr == 0).sum()),
        "mean": round(float(arr.mean()), 3),
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "max": int(arr.max()),
        "buckets": buckets,
    }


def degree_stats(store: GraphStore) -> dict[str, Any]:
    entities = store.entity_degrees()
    items = store.item_fact_counts()
    by_type: dict[str, list[int]] = defaultdict(list)
    for row in entities:
        by_type[row["type"] or "?"].append(int(row["items"]))
    return {
        "items_per_entity": distribution([int(r["items"]) for r in entities]),
        "items_per_entity_by_type": {t: distribution(v) for t, v in sorted(by_type.items())},
        "entities_per_item": distribution([int(r["entities"]) for r in items]),
        "orphan_entities": sum(1 for r in entities if int(r["items"]) == 0 and int(r["users"]) == 0),
    }


def duplicate_candidates(
    store: GraphStore, *, threshold: float, min_chars: int, limit: int = 10
) -> list[dict[str, Any]]:
    """Entity pairs of one type with similar names (similarity >= threshold), found through the index."""
    rows = []
    names = {}
    for row in store.entity_keys():
        type_, norm = split_entity_key(row["key"])
        names[row["key"]] = row["name"]
        query = fulltext_query(norm)
        if query and len(norm) >= min_chars:
            rows.append({"key": row["key"], "type": type_, "query": query})
    candidates = store.fulltext_candidates(rows, limit=limit) if rows else {}
    pairs: dict[tuple[str, str], float] = {}
    for key, found in candidates.items():
        norm = split_entity_key(key)[1]
        for other, _ in found:
            other_norm = split_entity_key(other)[1]
            if not compatible(norm, other_norm, min_chars=min_chars):
                continue
            score = similarity(norm, other_norm)
            if score >= threshold:
                a, b = sorted((key, other))
                pairs[(a, b)] = round(score, 4)
    return [
        {"a": names.get(a, a), "b": names.get(b, b), "key_a": a, "key_b": b, "score": s}
        for (a, b), s in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def compare_to_gold(
    facts: Iterable[Fact],
    *,
    gold_source: str,
    llm_items: set[str],
    resolutions: Mapping[tuple[str, str], Resolution] | None = None,
) -> dict[str, Any]:
    """Precision and recall of LLM item facts against one gold source, per relation and overall."""

    def key(f: Fact) -> str:
        res = resolutions.get((f.object_type, f.object)) if resolutions else None
        return res.canonical_key if res else entity_key(f.object_type, f.object)

    gold: dict[str, set[tuple[str, str]]] = defaultdict(set)
    llm: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for f in facts:
        if f.head_kind != "Item" or f.head_id not in llm_items:
            continue
        if f.source == gold_source:
            gold[f.relation].add((f.head_id, key(f)))
        elif f.source == "llm":
            llm[f.relation].add((f.head_id, key(f)))
    out: dict[str, Any] = {}
    totals = {"llm_facts": 0, "gold_facts": 0, "matched": 0}
    for relation in sorted(gold):
        covered = {h for h, _ in gold[relation]}
        predicted = {(h, k) for h, k in llm[relation] if h in covered}
        matched = len(predicted & gold[relation])
        out[relation] = {
            "items": len(covered),
            "llm_facts": len(predicted),
            "gold_facts": len(gold[relation]),
            "matched": matched,
            "precision": round(matched / len(predicted), 4) if predicted else None,
            "recall": round(matched / len(gold[relation]), 4),
        }
        totals["llm_facts"] += len(predicted)
        totals["gold_facts"] += len(gold[relation])
        totals["matched"] += matched
    out["overall"] = {
        **totals,
        "items": len(llm_items),
        "precision": round(totals["matched"] / totals["llm_facts"], 4) if totals["llm_facts"] else None,
        "recall": round(totals["matched"] / totals["gold_facts"], 4) if totals["gold_facts"] else None,
    }
    return out
