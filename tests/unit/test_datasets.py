"""Loaders read the full public MovieLens / HetRec files, and the bundled subset matches them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kg_enhance.datasets.movielens import DEMO_DIR, load_hetrec_facts, load_ml_latest_small

REPO = Path(__file__).resolve().parents[2]
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


def test_user_text_joins_the_rows_of_each_user(tmp_path: Path) -> None:
    from kg_enhance.api import validate_job
    from kg_enhance.io.tables import read_users

    job = validate_job(REPO / "examples" / "jobs" / "movielens-demo.yaml")
    users = read_users(job)
    tags = pd.read_csv(DEMO_DIR / "tags.csv", dtype=str)
    assert len(users) == tags["userId"].nunique() == 39
    by_id = {u.item_id: u.text["tag"] for u in users}
    limit = job.source.users.max_text_chars  # type: ignore[union-attr]
    for uid in ("18", "62"):  # one user with few tags, one with many (cut to the limit)
        distinct = list(dict.fromkeys(t.strip() for t in tags[tags["userId"] == uid]["tag"]))
        assert by_id[uid] == "; ".join(distinct)[:limit]
    assert max(len(t) for t in by_id.values()) == limit


def test_user_extraction_needs_a_user_table(tmp_path: Path) -> None:
    from kg_enhance.api import validate_job
    from kg_enhance.errors import ConfigError

    with pytest.raises(ConfigError, match="llm.users.enabled needs source.users"):
        validate_job(
            REPO / "examples" / "jobs" / "movielens-demo.yaml",
            overrides=["source.users=null"],
        )
