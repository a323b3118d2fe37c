"""The noise curve: fact noise (exact counts, same types, wrong entities, determinism) and
``kg-enhance ablate --fact-noise`` end to end on the in-memory graph."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kg_enhance.datasets.movielens import DEMO_DIR
from kg_enhance.errors import ConfigError, StageError
from kg_enhance.graph.noise import corrupt_facts, replaced_count
from kg_enhance.graph.store import Triple
from kg_enhance.names import entity_key
from kg_enhance.noise_curve import parse_shares
from kg_enhance.report import build_html
from kg_enhance.report.data import RunView
from kg_enhance.rundir import RunDir
from tests.support.helpers import REPO, write_job


def demo_gold() -> list[Triple]:
    """The bundled demo's HetRec facts as the graph holds them (director, genres, country)."""
    df = pd.read_csv(DEMO_DIR / "gold_facts.tsv", sep="\t", dtype=str)
    return [
        (f"item:{i}", r, f"entity:{entity_key(t, o)}")
        for i, r, o, t in zip(df["item_id"], df["relation"], df["object"], df["object_type"], strict=True)
    ]


GOLD = demo_gold()


def _type(tail: str) -> str:
    return tail.split(":")[1]


def check_noise(gold: list[Triple], share: float, seed: int) -> set[Triple]:
    """Every property a noisy KG must have; returns the wrong facts."""
    truth = set(gold)
    n = len(truth)
    noisy = corrupt_facts(gold, share, seed=seed)
    got = noisy.triples
    assert len(got) == len(set(got)) == n  # as many distinct facts as the gold set
    wrong = set(got) - truth
    assert len(wrong) == noisy.n_replaced == replaced_count(share, n) == round(share * n)
    kept = set(got) & truth
    assert len(kept) == n - len(wrong)
    by_head_rel = {(h, r) for h, r, _ in truth}
    sorted_truth = sorted(truth)
    for (h, r, t), (h0, r0, t0), was_replaced in zip(got, sorted_truth, noisy.replaced, strict=True):
        assert (h, r) == (h0, r0) and _type(t) == _type(t0)  # same head, relation and entity type
        assert ((h, r, t) in wrong) == bool(was_replaced)
        if was_replaced:
            assert t != t0 and (h, r, t) not in truth and (h, r) in by_head_rel
    return wrong


@pytest.mark.parametrize("share", [0.1, 0.25, 0.5, 0.75, 1.0])
def test_a_share_replaces_exactly_that_many_facts_with_wrong_entities_of_the_same_type(share: float) -> None:
    wrong = check_noise(GOLD, share, seed=3)
    # the wrong entities exist in the gold graph under the same relation (a plausible error)
    tails = {(r, t) for _, r, t in GOLD}
    assert all((r, t) in tails for _, r, t in wrong)


def test_level_zero_is_the_gold_set() -> None:
    noisy = corrupt_facts(GOLD, 0.0, seed=1)
    assert set(noisy.triples) == set(GOLD) and noisy.n_replaced == 0 and len(noisy.triples) == len(set(GOLD))


def test_the_draw_is_deterministic_per_seed_and_ignores_input_order() -> None:
    a = corrupt_facts(GOLD, 0.5, seed=7).triples
    shuffled = [GOLD[i] for i in np.random.default_rng(0).permutation(len(GOLD))]
    assert corrupt_facts(shuffled, 0.5, seed=7).triples == a
    assert corrupt_facts(GOLD + GOLD[:50], 0.5, seed=7).triples == a  # duplicates count once
    assert corrupt_facts(GOLD, 0.5, seed=8).triples != a


def test_smaller_shares_replace_a_subset_of_the_facts_larger_ones_replace() -> None:
    masks = [corrupt_facts(GOLD, s, seed=2).replaced for s in (0.25, 0.5, 0.75)]
    assert np.all(masks[0] <= masks[1]) and np.all(masks[1] <= masks[2])


def test_facts_without_another_entity_of_their_type_cannot_be_corrupted() -> None:
    lone = [(f"item:{i}", "PRODUCED_IN", "entity:Country:usa") for i in range(30)]
    lone += [(f"item:{i}", "DIRECTED_BY", f"entity:Person:p{i}") for i in range(10)]
    check_noise(lone, 0.25, seed=0)  # 10 of 40: only the directors can take another entity
    with pytest.raises(StageError, match="only 10 have another entity"):
        corrupt_facts(lone, 0.5, seed=0)
    # an item holding every genre of the pool has no wrong genre left
    full = [("item:1", "HAS_GENRE", f"entity:Genre:g{g}") for g in range(3)] + [
        ("item:2", "HAS_GENRE", "entity:Genre:g0")
    ]
    check_noise(full, 0.25, seed=0)
    with pytest.raises(StageError, match="found a wrong entity"):
        corrupt_facts(full, 0.5, seed=0)


def test_a_rare_valid_entity_is_found_when_random_draws_keep_missing_it() -> None:
    """200 films by one director and one by another: at share 1 every film must take the rare
    one, which frequency-weighted draws almost never hit; the valid entities are then enumerated."""
    gold = [(f"item:{i}", "DIRECTED_BY", "entity:Person:p0") for i in range(200)]
    gold.append(("item:200", "DIRECTED_BY", "entity:Person:p1"))
    wrong = check_noise(gold, 1.0, seed=0)
    assert {t for _, _, t in wrong} == {"entity:Person:p0", "entity:Person:p1"}


@settings(max_examples=60, deadline=None)
@given(
    facts=st.lists(
        st.tuples(st.integers(0, 12), st.sampled_from(["A", "B"]), st.integers(0, 6)), min_size=1, max_size=80
    ),
    share=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_noise_properties_on_random_graphs(
    facts: list[tuple[int, str, int]], share: float, seed: int
) -> None:
    kinds = {"A": "Person", "B": "Genre"}
    gold = [(f"item:{h}", r, f"entity:{kinds[r]}:e{t}") for h, r, t in facts]
    try:
        check_noise(gold, share, seed)
    except StageError as e:  # only when the share asks for more wrong facts than the graph allows
        assert "lower the share" in str(e)


def test_shares_are_parsed_and_checked() -> None:
    assert parse_shares("0.5, 0,0.25,0.5") == [0.0, 0.25, 0.5]
    for bad in ("", "x", "0,1.5", "-0.1"):
        with pytest.raises(ConfigError, match="--fact-noise"):
            parse_shares(bad)


#: runs `kg-enhance run --only extract,load` and then ARGS in one process on the in-memory store
_CLI_ON_MEMORY = textwrap.dedent(
    """
    import sys
    from kg_enhance.graph.memory import InMemoryGraphStore
    from kg_enhance.graph.store import Neo4jStore
    from kg_enhance.cli import main

    store = InMemoryGraphStore(namespace="t")
    Neo4jStore.for_job = classmethod(lambda cls, job: store)  # no Neo4j: the graph lives in memory
    for args in (["run", sys.argv[1], "--only", "extract,load", "--no-progress"], sys.argv[2:]):
        try:
            main(args)
        except SystemExit as e:
            if e.code:
                raise
    """
)

TINY = """
kge: {dim: 8, epochs: 4}
recommender: {epochs: 3, dim: 8, models: [{type: bpr_mf}], ablation: {model: kg_bpr, baseline: bpr_mf}}
"""


@pytest.mark.slow
def test_ablate_fact_noise_end_to_end(tmp_path: Path) -> None:
    job = write_job(tmp_path, llm_enabled=False, extra=TINY)
    got = subprocess.run(
        [
            sys.executable,
            "-c",
            _CLI_ON_MEMORY,
            str(job),
            "ablate",
            str(job),
            "--fact-noise",
            "0,0.5",
            "--seeds",
            "4,5",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert got.returncode == 0, got.stderr[-3000:]
    folder = tmp_path / "run" / "ablation"
    result = json.loads((folder / "noise.json").read_text())
    n = result["gold_facts"]
    assert n >= len({f for f in GOLD if f[1] != "HAS_GENRE"})  # HetRec's directors and countries + genres
    assert result["seeds"] == [4, 5] and result["shares"] == [0.0, 0.5]
    runs = result["runs"]
    assert [(r["variant"], r["seed"], r["noise"]) for r in runs] == [
        ("no_kg", 4, None),
        ("kg_bpr", 4, 0.0),
        ("kg_bpr", 4, 0.5),
        ("no_kg", 5, None),
        ("kg_bpr", 5, 0.0),
        ("kg_bpr", 5, 0.5),
    ]
    assert [r["replaced"] for r in runs if r["variant"] == "kg_bpr"] == [0, round(0.5 * n), 0, round(0.5 * n)]
    rows = {(r["variant"], r["noise"]): r for r in result["rows"]}
    assert set(rows) == {("no_kg", None), ("kg_bpr", 0.0), ("kg_bpr", 0.5)}
    for (variant, noise), row in rows.items():
        group = [r for r in runs if r["variant"] == variant and r["noise"] == noise]
        values = [r["ndcg@20"] for r in group]
        assert row["ndcg@20"] == pytest.approx(np.mean(values), abs=1e-5)
        assert row["std"]["ndcg@20"] == pytest.approx(np.std(values, ddof=1), abs=1e-5)
        if variant != "no_kg":
            base = {r["seed"]: r["ndcg@20"] for r in runs if r["variant"] == "no_kg"}
            paired = [r["ndcg@20"] - base[r["seed"]] for r in group]
            assert row["delta"]["ndcg@20"] == pytest.approx(np.mean(paired), abs=1e-5)
        assert 0 < row["ndcg@20"] <= 1 and 0 <= row["long_tail_ndcg@20"] <= 1
    csv_lines = (folder / "noise.csv").read_text().splitlines()
    assert csv_lines[0].startswith("variant,noise,seeds,replaced,ndcg@20_mean") and len(csv_lines) == 4
    assert (folder / "noise.png").stat().st_size > 5000
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    curve = report["ablation"]["noise"]["rows"]
    assert {(r["variant"], r["noise"]) for r in curve} == {
        ("kg_bpr", 0.0),
        ("kg_bpr", 0.5),
        ("no_kg", 0.0),
        ("no_kg", 0.5),
    }
    # the HTML report's ablation section draws the curve even when no plain ablation ran
    html = build_html(RunView(run=RunDir(tmp_path / "run"), report=report))
    section = html.split('<section id="ablation">')[1].split("</section>")[0]
    assert "Noise curves" in section and "<img" in section and "No ablation" not in section
    assert "noise 0.50" in got.stdout and "no_kg" in got.stdout and "2 seeds [4, 5]" in got.stdout
