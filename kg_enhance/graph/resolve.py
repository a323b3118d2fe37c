"""Entity resolution: which graph entity each (type, name) in a batch of facts becomes.

In order, for each distinct ``(type, name)``:

1. **key**: ``<Type>:<normalised name>`` (NFKC, case, punctuation, whitespace,
   leading article). Names with the same key are the same entity, always.
2. **entity**: the key already exists in the graph.
3. **alias**: the alias table (``(:Alias)-[:ALIAS_OF]->(:Entity)``, persisted in the
   graph across runs) maps the key to an entity.
4. **fuzzy**: candidates come from an index, never from comparing all pairs: the
   Neo4j full-text index over entity names for what is in the graph, and a token
   index over the names accepted earlier in this load. A candidate of the same type
   merges when its token-sorted similarity reaches the threshold, both names are at
   least ``min_chars`` long and their numbers agree ("Rocky II" is not "Rocky III").
5. **new**: otherwise the name becomes a new entity.

Names are processed in the order given, so the caller decides which source names
entities first (catalog and imported files before the LLM). Every fuzzy merge is
written to the alias table with its score and run, which is what
``kg-enhance graph why`` shows.

Cost. Names go to the store in batches (``batch_size`` keys): one ``existing_entities``,
one ``alias_targets`` and one ``fulltext_candidates`` call per batch, each a single
statement per batch in Neo4j (up to 10 full-text candidates per new name). The graph
does not change while a load resolves, so batching gives exactly the answers of one
call over every name. The in-load token index blocks on each token, its 3-letter prefix
and its one-deletion variants (so a typo, a missing or an extra letter or two swapped
letters still meet in a block), and a name is compared with at most
:data:`MAX_LOAD_CANDIDATES` names from it, smallest blocks first: comparisons grow
linearly with the names, not with their square, even where a block ("john", "mar*")
holds thousands of names.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rapidfuzz import fuzz

from kg_enhance.config.models import ResolutionConfig
from kg_enhance.names import entity_key, normalise_name

Reason = Literal["entity", "alias", "fuzzy", "new"]
#: in-load candidates compared with one name at most (see the module docstring)
MAX_LOAD_CANDIDATES = 200
#: full-text candidates asked for per new name
FULLTEXT_LIMIT = 10
_DIGITS = re.compile(r"\d+")
_ROMAN = re.compile(r"^(?:i{1,3}|iv|v|vi{1,3}|ix|x)$")


@dataclass(frozen=True)
class Resolution:
    type: str
    name: str
    key: str
    canonical_key: str
    canonical_name: str
    reason: Reason
    score: float | None = None
    matched_name: str | None = None


class ResolutionBackend(Protocol):
    """What resolution needs from the graph store."""

    def existing_entities(self, keys: Sequence[str]) -> dict[str, str]: ...
    def entity_types_present(self, types: Sequence[str]) -> set[str]: ...
    def alias_targets(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]: ...
    def fulltext_candidates(
        self, rows: Sequence[dict[str, str]], *, limit: int
    ) -> dict[str, list[tuple[str, str]]]: ...


def similarity(a: str, b: str) -> float:
    """Similarity of two normalised names in [0, 1]: token-sorted edit ratio."""
    return fuzz.token_sort_ratio(a, b) / 100.0


def _numbers(norm: str) -> tuple[str, ...]:
    tokens = norm.split()
    return tuple(t for t in tokens if _DIGITS.fullmatch(t) or _ROMAN.match(t))


def compatible(a: str, b: str, *, min_chars: int) -> bool:
    """Whether two normalised names may merge fuzzily at all."""
    return len(a) >= min_chars and len(b) >= min_chars and _numbers(a) == _numbers(b)


def fulltext_query(norm: str) -> str:
    """A Lucene query from a normalised name: each token with an edit allowance by length."""
    terms = []
    for token in norm.split():
        token = re.sub(r"[^\w]", "", token)
        if not token:
            continue
        terms.append(token if len(token) <= 3 else f"{token}~1" if len(token) <= 6 else f"{token}~2")
    return " ".join(terms)


def _blocks(norm: str) -> list[str]:
    """Blocking keys of the in-load index: for each token of 3 or more characters the token and
    its 3-letter prefix, and for tokens of 4 or more each variant with one character deleted
    (two tokens one edit or one swap apart share a variant)."""
    out: dict[str, None] = {}
    for token in norm.split():
        if len(token) < 3:
            continue
        out[f"d:{token}"] = None
        out[f"p:{token[:3]}"] = None
        if len(token) >= 4:
            for i in range(len(token)):
                out[f"d:{token[:i]}{token[i + 1 :]}"] = None
    return list(out)


class _LoadIndex:
    """The names this load made new entities, by type and blocking key, for fuzzy matching.

    Postings keep the order names were accepted in; :meth:`candidates` returns at most
    ``budget`` of them, taking the smallest blocks first, in acceptance order (which is
    what breaks ties between equally similar candidates: the earlier name wins).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.postings: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)
        self.order: dict[str, int] = {}
        self.names: dict[str, str] = {}

    def add(self, type_: str, key: str, norm: str, name: str) -> None:
        self.order[key] = len(self.order)
        self.names[key] = name
        for block in _blocks(norm):
            self.postings[(type_, block)][key] = None

    def candidates(self, type_: str, norm: str) -> list[tuple[str, str]]:
        lists = [self.postings.get((type_, b)) for b in _blocks(norm)]
        found: dict[str, None] = {}
        for posting in sorted((p for p in lists if p), key=len):
            for key in posting:
                if len(found) >= self.budget:
                    break
                found[key] = None
        return [(k, self.names[k]) for k in sorted(found, key=self.order.__getitem__)]


class EntityResolver:
    def __init__(
        self,
        backend: ResolutionBackend,
        config: ResolutionConfig,
        *,
        batch_size: int = 2000,
        max_load_candidates: int = MAX_LOAD_CANDIDATES,
    ) -> None:
        self.backend = backend
        self.config = config
        self.batch_size = max(1, batch_size)
        self.max_load_candidates = max_load_candidates

    def resolve(self, names: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Resolution]:
        """Resolve ``(type, name)`` pairs, earlier pairs first; returns one entry per distinct pair.

        Keys go to the backend ``batch_size`` at a time (see the module docstring); the
        result does not depend on the batch size.
        """
        ordered: list[tuple[str, str]] = list(dict.fromkeys(names))
        key_of = {pair: entity_key(*pair) for pair in ordered}
        first_name: dict[str, str] = {}
        for pair in ordered:
            first_name.setdefault(key_of[pair], pair[1])
        keys = list(first_name)
        decided: dict[str, Resolution] = {}
        index = _LoadIndex(self.max_load_candidates)
        types = sorted({key.split(":", 1)[0] for key in keys})
        searchable = self.backend.entity_types_present(types) if self.config.fuzzy and types else set()
        for start in range(0, len(keys), self.batch_size):
            self._resolve_batch(keys[start : start + self.batch_size], first_name, decided, index, searchable)
        return {pair: _with_name(decided[key_of[pair]], pair[1]) for pair in ordered}

    def _resolve_batch(
        self,
        keys: list[str],
        first_name: dict[str, str],
        decided: dict[str, Resolution],
        index: _LoadIndex,
        searchable: set[str],
    ) -> None:
        """Decide ``keys`` in order; ``searchable``: the types with entities in the graph (only their
        names are looked up in the full-text index)."""
        cfg = self.config
        existing = self.backend.existing_entities(keys)
        aliases = self.backend.alias_targets([k for k in keys if k not in existing])
        candidates: dict[str, list[tuple[str, str]]] = {}
        if cfg.fuzzy:
            rows = []
            for key in keys:
                if key in existing or key in aliases:
                    continue
                type_, norm = key.split(":", 1)
                query = fulltext_query(norm)
                if query and len(norm) >= cfg.min_chars and type_ in searchable:
                    rows.append({"key": key, "type": type_, "query": query})
            if rows:
                candidates = self.backend.fulltext_candidates(rows, limit=FULLTEXT_LIMIT)
        for key in keys:
            name = first_name[key]
            type_, norm = key.split(":", 1)
            if key in existing:
                decided[key] = Resolution(type_, name, key, key, existing[key], "entity")
                continue
            if key in aliases:
                target, target_name = aliases[key]
                decided[key] = Resolution(type_, name, key, target, target_name, "alias")
                continue
            best: tuple[float, str, str] | None = None
            if cfg.fuzzy and len(norm) >= cfg.min_chars:
                pool = [*candidates.get(key, []), *index.candidates(type_, norm)]
                for cand_key, cand_name in pool:
                    cand_norm = cand_key.split(":", 1)[1]
                    if not compatible(norm, cand_norm, min_chars=cfg.min_chars):
                        continue
                    score = similarity(norm, cand_norm)
                    if score >= cfg.threshold and (best is None or score > best[0]):
                        best = (score, cand_key, cand_name)
            if best is not None:
                score, cand_key, cand_name = best
                target = decided[cand_key].canonical_key if cand_key in decided else cand_key
                target_name = decided[cand_key].canonical_name if cand_key in decided else cand_name
                decided[key] = Resolution(
                    type_, name, key, target, target_name, "fuzzy", round(score, 4), cand_name
                )
                continue
            decided[key] = Resolution(type_, name, key, key, name, "new")
            index.add(type_, key, norm, name)


def _with_name(res: Resolution, name: str) -> Resolution:
    if res.name == name:
        return res
    return Resolution(
        res.type,
        name,
        res.key,
        res.canonical_key,
        res.canonical_name,
        res.reason,
        res.score,
        res.matched_name,
    )


def alias_rows(resolutions: Iterable[Resolution]) -> list[dict[str, Any]]:
    """Rows for the alias table: one per fuzzy-merged key."""
    rows: dict[str, dict[str, Any]] = {}
    for res in resolutions:
        if res.reason == "fuzzy":
            rows[res.key] = {
                "key": res.key,
                "name": res.name,
                "type": res.type,
                "canonical_key": res.canonical_key,
                "reason": res.reason,
                "score": res.score,
                "matched_name": res.matched_name,
            }
    return list(rows.values())


def explain(a: str, b: str, type_: str, backend: Any) -> list[str]:
    """Lines that say whether and why two names are one entity."""
    ka, kb = entity_key(type_, a), entity_key(type_, b)
    lines = [f"{a!r} -> key {ka!r}", f"{b!r} -> key {kb!r}"]
    if ka == kb:
        lines.append(
            f"same entity: both names normalise to {normalise_name(a)!r} "
            "(NFKC, case, punctuation, whitespace and leading articles are ignored)"
        )
        return lines
    targets = {}
    for name, key in ((a, ka), (b, kb)):
        row = backend.explain_key(key)
        if row.get("entity_key"):
            targets[key] = row["entity_key"]
            lines.append(f"{name!r} is the entity {row['entity_name']!r} itself")
        elif row.get("alias_target_key"):
            targets[key] = row["alias_target_key"]
            lines.append(
                f"{name!r} is an alias of {row['alias_target_name']!r}: {row['reason']} match with "
                f"{row['matched_name']!r}, similarity {row['score']}, recorded in run {row['run_id']}"
            )
        else:
            lines.append(f"{name!r} is not in the graph")
    if len(targets) == 2 and targets[ka] == targets[kb]:
        lines.append(f"same entity: both resolve to {targets[ka]!r}")
    else:
        lines.append("different entities")
    return lines
