"""Fact noise: a share of the facts replaced by wrong entities of the same type.

Why: an LLM's facts are partly wrong, and the noise curve (``kg-enhance ablate JOB
--fact-noise 0,0.25,0.5``) asks how wrong they may be before they stop helping a
recommender. A wrong fact here looks like a plausible LLM error: the right head and
relation, an entity of the right type that exists in the graph, just not the true one.

For share ``p`` of ``n`` distinct facts, exactly ``round(p * n)`` facts are replaced.
A replacement's entity is the tail of another fact of the same relation and entity type
(so the entities' degree distribution is kept in expectation and the curve measures
truth, not graph shape); it differs from the true entity, is not another true fact of
that head and relation, and no two replacements coincide, so the noisy KG has exactly
``n`` distinct facts. The draw depends only on the set of facts and ``seed`` (not their
order), and the replaced facts of a smaller share are those of a larger one (one
permutation per seed), which makes a curve smoother than independent draws.

Everything is numpy over integer codes: one pass to encode, then vectorised rounds of
rejection sampling over the facts still waiting for a valid replacement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kg_enhance.errors import StageError
from kg_enhance.graph.store import Triple

#: draws per fact before it is given up and the next fact of the permutation is taken instead (when
#: none is left, the fact's valid entities are enumerated and one is drawn, weighted by frequency)
MAX_TRIES = 32


@dataclass(frozen=True)
class NoisyFacts:
    """The facts after noise: ``triples`` (sorted, distinct) and which of them were replaced."""

    triples: list[Triple]
    #: ``replaced[i]``: ``triples[i]`` is a wrong fact
    replaced: np.ndarray
    #: facts whose group (relation, entity type) has another entity to draw from
    replaceable: int

    @property
    def n_replaced(self) -> int:
        return int(self.replaced.sum())


def tail_types(tails: pd.Index) -> np.ndarray:
    """The entity type of each tail label (``entity:Genre:comedy`` -> ``Genre``); the kind otherwise."""
    parts = pd.Series(tails, dtype=object).str.split(":", n=2)
    kind, typ = parts.str[0], parts.str[1]
    return np.asarray(np.where(kind == "entity", typ, kind), dtype=object)


def replaced_count(share: float, n: int) -> int:
    """How many of ``n`` facts the share replaces: ``round(share * n)``."""
    return int(round(share * n))


def corrupt_facts(triples: Sequence[Triple], share: float, *, seed: int) -> NoisyFacts:
    """Replace ``round(share * n)`` of the ``n`` distinct facts with wrong entities of the same type.

    Raises :class:`StageError` when fewer facts than that have a wrong entity to take.
    """
    if not 0.0 <= share <= 1.0:
        raise StageError(f"fact noise: share {share} is outside [0, 1]; give shares like 0,0.25,0.5")
    frame = pd.DataFrame(list(triples), columns=["h", "r", "t"], dtype=object).drop_duplicates()
    h_code, _h = pd.factorize(frame["h"], sort=True)
    r_code, _r = pd.factorize(frame["r"], sort=True)
    t_code, t_labels = pd.factorize(frame["t"], sort=True)
    n_r, n_t = max(1, len(_r)), max(1, len(t_labels))
    key = (h_code.astype(np.int64) * n_r + r_code) * n_t + t_code
    order = np.argsort(key, kind="stable")  # a canonical order: the draw ignores the input's order
    h, r, t, key = h_code[order], r_code[order], t_code[order], key[order]
    n = len(key)
    m = replaced_count(share, n)
    heads, rels = _h[h], _r[r]
    if m == 0:
        return NoisyFacts(list(zip(heads, rels, t_labels[t], strict=True)), np.zeros(n, dtype=bool), 0)

    # groups: (relation, tail type); the pool of a group is its facts' tails (frequency-weighted)
    type_code, _ = pd.factorize(tail_types(t_labels), sort=True)
    group, _g = pd.factorize(r.astype(np.int64) * (int(type_code.max()) + 1) + type_code[t], sort=True)
    by_group = np.argsort(group, kind="stable")
    pool = t[by_group]
    start = np.searchsorted(group[by_group], np.arange(len(_g)))
    size = np.bincount(group, minlength=len(_g))
    pairs = np.unique(group.astype(np.int64) * n_t + t)
    distinct = np.bincount(pairs // n_t, minlength=len(_g))
    candidates = np.flatnonzero(distinct[group] > 1)
    if len(candidates) < m:
        raise StageError(
            f"fact noise: share {share} needs {m} of {n} facts replaced, but only {len(candidates)} have another "
            "entity of the same relation and type to take; lower the share"
        )

    rng = np.random.default_rng(seed)
    queue = rng.permutation(candidates)  # the first m are replaced; the rest stand in for hopeless ones
    new_t = t.copy()
    taken = np.zeros(0, dtype=np.int64)  # keys of accepted replacements
    pending, tries, nxt, done = queue[:m], np.zeros(m, dtype=np.int64), m, 0
    while done < m:
        if len(pending) == 0:
            raise StageError(
                f"fact noise: share {share} needs {m} of {n} facts replaced, but only {done} found a wrong entity "
                "that is not already a fact of their head; lower the share"
            )
        g = group[pending]
        draw = pool[start[g] + (rng.random(len(pending)) * size[g]).astype(np.int64)]
        new_key = key[pending] - t[pending] + draw
        ok = (draw != t[pending]) & ~_member(new_key, key) & ~_member(new_key, taken)
        _, first = np.unique(new_key, return_index=True)  # two replacements landing on one fact: keep one
        dup = np.ones(len(pending), dtype=bool)
        dup[first] = False
        ok &= ~dup
        new_t[pending[ok]] = draw[ok]
        taken = np.sort(np.concatenate([taken, new_key[ok]]))
        done += int(ok.sum())
        tries = tries[~ok] + 1
        pending = pending[~ok]
        hopeless = tries >= MAX_TRIES
        if hopeless.any() and nxt < len(queue):  # give those up; the next facts of the permutation stand in
            k = min(int(hopeless.sum()), len(queue) - nxt)
            pending = np.concatenate([pending[~hopeless], queue[nxt : nxt + k]])
            tries = np.concatenate([tries[~hopeless], np.zeros(k, dtype=np.int64)])
            nxt += k
        elif hopeless.any():  # no stand-ins left: enumerate the valid entities of those few facts
            for i in pending[hopeless]:
                tails = pool[start[group[i]] : start[group[i]] + size[group[i]]]
                keys = key[i] - t[i] + tails
                valid = tails[(tails != t[i]) & ~_member(keys, key) & ~_member(keys, taken)]
                if len(valid):
                    new_t[i] = valid[rng.integers(len(valid))]
                    taken = np.sort(np.append(taken, key[i] - t[i] + new_t[i]))
                    done += 1
            pending = pending[~hopeless]
            tries = tries[~hopeless]
    replaced = new_t != t
    return NoisyFacts(list(zip(heads, rels, t_labels[new_t], strict=True)), replaced, len(candidates))


def _member(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """``values[i] in sorted_keys``, vectorised (binary search)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return np.asarray(sorted_keys[pos] == values)
