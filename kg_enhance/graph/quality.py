"""Graph statistics and quality measures for the report's ``graph`` section.

* degree distributions of entities (items per entity) and items (entities per item),
  exact, from histograms the database aggregates (one row per distinct degree, never
  one per entity or item);
* duplicate candidates: entity pairs of one type whose names are similar, found
  through the full-text index (never all pairs), for at most ``max_entities``
  entities (a deterministic sample by key hash when there are more);
* LLM facts against a gold source, per relation: precision on the items and
  relations the gold source covers, recall over the gold facts of the items the LLM saw.
"""

from __future__ import annotations

import hashlib
import heapq
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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


def _percentile(values: Sequence[int], cumulative: Sequence[int], n: int, pct: float) -> float:
    """``np.percentile(expanded, pct)`` (linear method) of the sorted multiset ``values`` with
    running counts ``cumulative``, without expanding it: the same float operations numpy makes."""
    virtual = float(np.true_divide(pct, 100)) * (n - 1)
    lower = int(np.floor(virtual))
    upper = min(lower + 1, n - 1)
    a = values[bisect_right(cumulative, lower)]
    b = values[bisect_right(cumulative, upper)]
    gamma = virtual - lower
    diff = float(b - a)
    return float(b - diff * (1 - gamma)) if gamma >= 0.5 else float(a + diff * gamma)


def distribution_from_counts(counts: Mapping[int, int]) -> dict[str, Any]:
    """:func:`distribution` of the multiset where value ``v`` occurs ``counts[v]`` times; equal to
    ``distribution`` of the expanded list, in memory of the number of distinct values."""
    values = sorted(v for v, c in counts.items() if c > 0)
    if not values:
        return {"count": 0}
    cumulative = list(np.cumsum([counts[v] for v in values]).tolist())
    n = int(cumulative[-1])
    total = sum(v * counts[v] for v in values)
    buckets = {}
    for lo, hi in DEGREE_BUCKETS:
        label = f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi else f"{lo}+")
        top = hi if hi else values[-1]
        buckets[label] = sum(counts[v] for v in values if lo <= v <= top)
    return {
        "count": n,
        "zero": int(counts.get(0, 0)),
        "mean": round(float(np.float64(total) / n), 3),
        "p50": _percentile(values, cumulative, n, 50),
        "p90": _percentile(values, cumulative, n, 90),
        "p99": _percentile(values, cumulative, n, 99),
        "max": int(values[-1]),
        "buckets": buckets,
    }


def degree_stats(store: GraphStore) -> dict[str, Any]:
    """Degree distributions from the store's histograms (bounded: one row per distinct degree)."""
    per_entity: dict[int, int] = defaultdict(int)
    by_type: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    orphans = 0
    for row in store.entity_degree_histogram():
        items, n = int(row["items"]), int(row["entities"])
        per_entity[items] += n
        by_type[row["type"] or "?"][items] += n
        if items == 0 and not row["with_users"]:
            orphans += n
    per_item: dict[int, int] = defaultdict(int)
    for row in store.item_fact_histogram():
        per_item[int(row["entities"])] += int(row["items"])
    return {
        "items_per_entity": distribution_from_counts(per_entity),
        "items_per_entity_by_type": {t: distribution_from_counts(c) for t, c in sorted(by_type.items())},
        "entities_per_item": distribution_from_counts(per_item),
        "orphan_entities": orphans,
    }


def _key_rank(key: str) -> int:
    """A stable pseudo-random rank of an entity key (the same in every process and store)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


@dataclass
class DuplicateScan:
    """What :func:`duplicate_candidates` looked at and found.

    ``status``: ``full`` (every entity of the entity namespace was looked up) or
    ``sampled`` (``entities`` exceeded ``max_entities``: the ``scanned`` entities with the
    lowest key hashes were, a deterministic uniform sample) or ``new`` (only the given new
    entities were looked up, against every entity). ``pairs`` are sorted by score.
    """

    status: Literal["full", "sampled", "new"]
    entities: int
    scanned: int
    pairs: list[dict[str, Any]] = field(default_factory=list)


def duplicate_candidates(
    store: GraphStore,
    *,
    threshold: float,
    min_chars: int,
    limit: int = 10,
    max_entities: int | None = None,
    only: set[str] | None = None,
) -> DuplicateScan:
    """Entity pairs of one type with similar names (similarity >= threshold), found through the index.

    One full-text lookup per scanned entity: at most ``max_entities`` of them (all when
    ``None``). The keys are streamed and only the ``max_entities`` with the lowest
    :func:`_key_rank` are kept, so memory is bounded by the cap, and a cap at or above the
    number of entities gives exactly the uncapped result.

    ``only``: look up just these entity keys (an incremental load's new entities; at most
    ``max_entities`` of them), each against every entity: a pair of two older entities was
    reported by the load that wrote them, so a refresh costs its new entities, not the graph.
    """
    entities = 0
    heap: list[tuple[int, str, str, Any]] = []  # (-rank, key, type, name): the kept ones, worst on top
    kept: list[tuple[int, str, str, Any]] = []
    for row in store.stream_entity_keys():
        entities += 1
        if only is not None and row["key"] not in only:
            continue
        entry = (-_key_rank(row["key"]), row["key"], row["type"], row["name"])
        if max_entities is None:
            kept.append(entry)
        elif len(heap) < max_entities:
            heapq.heappush(heap, entry)
        elif max_entities > 0 and entry > heap[0]:
            heapq.heapreplace(heap, entry)
    if max_entities is not None:
        kept = heap
    names: dict[str, Any] = {}
    rows = []
    for _, key, _, name in sorted(kept, key=lambda e: e[1]):
        type_, norm = split_entity_key(key)
        names[key] = name
        query = fulltext_query(norm)
        if query and len(norm) >= min_chars:
            rows.append({"key": key, "type": type_, "query": query})
    candidates = store.fulltext_candidates(rows, limit=limit) if rows else {}
    pairs: dict[tuple[str, str], float] = {}
    for key, found in candidates.items():
        norm = split_entity_key(key)[1]
        for other, other_name in found:
            names.setdefault(other, other_name)
            other_norm = split_entity_key(other)[1]
            if not compatible(norm, other_norm, min_chars=min_chars):
                continue
            score = similarity(norm, other_norm)
            if score >= threshold:
                a, b = sorted((key, other))
                pairs[(a, b)] = round(score, 4)
    return DuplicateScan(
        status="new" if only is not None else "sampled" if len(kept) < entities else "full",
        entities=entities,
        scanned=len(kept),
        pairs=[
            {"a": names.get(a, a), "b": names.get(b, b), "key_a": a, "key_b": b, "score": s}
            for (a, b), s in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    )


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
