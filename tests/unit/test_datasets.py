"""Loaders read the full public MovieLens / HetRec files, and the bundled subset matches them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kg_enhance.datasets.movielens import DEMO_DIR, load_hetrec_facts, load_ml_latest_small

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "movielens"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/movielens is not beside this checkout")
def test_full_files_load_and_the_demo_subset_is_a_slice_of_them() -> None:
    ml = load_ml_latest_small(SHARED / "ml-latest-small")
    assert len(ml["movies"]) == 9742 and len(ml["ratings"]) == 100836 and len(ml["tags"]) == 3683
    gold = load_hetrec_facts(SHARED / "hetrec2011-movielens-2k")
    assert set(gold["relation"]) == {"DIRECTED_BY", "HAS_GENRE", "PRODUCED_IN"}
    assert gold["object"].str.len().min() > 0
    demo = pd.read_csv(DEMO_DIR / "ratings.csv")
    full = ml["ratings"].merge(demo, on=["userId", "movieId", "rating", "timestamp"])
    assert len(full) == len(demo) == 32927


def test_bundled_subset_ships_with_licenses() -> None:
    for name in (
        "movies.csv",
        "ratings.csv",
        "tags.csv",
        "gold_facts.tsv",
        "LICENSE-movielens.txt",
        "LICENSE-hetrec.txt",
    ):
        assert (DEMO_DIR / name).is_file()
    movies = pd.read_csv(DEMO_DIR / "movies.csv")
    assert len(movies) == 300 and movies["movieId"].is_unique
