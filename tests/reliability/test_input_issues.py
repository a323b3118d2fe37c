"""Input problems are counted (file, reason, count, first data rows), never silent; ``strict`` makes them errors.

Each test copies a bundled MovieLens file into ``tmp_path``, breaks a few known rows,
points the test job at the copy and calls the readers directly (no Neo4j, no LLM).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kg_enhance.api import load, validate_job
from kg_enhance.config.models import JobSpec
from kg_enhance.datasets.movielens import DEMO_DIR
from kg_enhance.errors import DataError
from kg_enhance.io.tables import (
    InputIssues,
    read_catalog,
    read_fact_file,
    read_interactions,
    read_users,
)
from kg_enhance.stages.load import item_rows
from kg_enhance.stages.recommend import recommend_split
from tests.support.helpers import write_job

LONG_TITLE = "A" * 1_100_000


def _bundled(name: str) -> pd.DataFrame:
    sep = "\t" if name.endswith(".tsv") else ","
    return pd.read_csv(DEMO_DIR / name, sep=sep, dtype=str, keep_default_na=False)


def _write(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)


def _job(tmp_path: Path, *overrides: str) -> JobSpec:
    return validate_job(write_job(tmp_path, llm_enabled=False), overrides=list(overrides))


def _counts(issues: InputIssues) -> dict[str, dict[str, tuple[int, list[int]]]]:
    return {
        path: {reason: (c.count, c.first_rows) for reason, c in reasons.items()}
        for path, reasons in issues.files.items()
    }


def _strict(fn: Any, *args: Any, **kwargs: Any) -> str:
    """The one-line message ``fn`` raises with a strict collector."""
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs, issues=InputIssues.collector(strict=True))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_bundled_demo_data_has_no_input_issues(tmp_path: Path) -> None:
    loaded = load(write_job(tmp_path, llm_enabled=False))
    job, issues = loaded.job, InputIssues.collector(strict=True)  # strict: any issue would raise
    catalog = read_catalog(job, issues=issues)
    facts, rejects = read_fact_file(
        job, loaded.ontology, job.source.facts[0], 0, catalog=catalog, issues=issues
    )
    interactions = read_interactions(job, catalog=catalog, issues=issues)
    users = read_users(job, issues=issues)
    assert (len(catalog.items), len(facts), rejects, len(interactions), len(users)) == (
        300,
        1422,
        [],
        32927,
        39,
    )
    assert issues.total == 0 and issues.files == {}


def test_catalog_duplicates_empty_ids_and_a_huge_title_are_counted(tmp_path: Path) -> None:
    movies = _bundled("movies.csv")
    movies.loc[2, "title"] = LONG_TITLE  # data row 3
    long_id = movies.loc[2, "movieId"]
    extra = movies.iloc[[0, 1, 4]].copy()  # data rows 301, 302, 303
    extra["title"] = ["second 1", "second 2", "no id"]
    extra.iloc[2, 0] = "  "
    _write(pd.concat([movies, extra]), tmp_path / "movies.csv")
    job = _job(tmp_path, "source.items.path=movies.csv")
    limit = job.source.max_text_chars
    assert limit == 10_000

    issues = InputIssues.collector()
    catalog = read_catalog(job, issues=issues)
    assert _counts(issues) == {
        "movies.csv": {"empty_id": (1, [303]), "duplicate_id": (2, [301, 302]), "text_too_long": (1, [3])}
    }
    assert issues.total == 4
    by_id = {i.item_id: i for i in catalog.items}
    assert len(catalog.items) == 300 and by_id["1"].title == "Toy Story (1995)"  # the first row is kept
    assert by_id[long_id].title == LONG_TITLE[:limit] and by_id[long_id].text["title"] == LONG_TITLE[:limit]
    stored = {row["item_id"]: row["props"] for row in item_rows(catalog.items)}
    assert len(stored[long_id]["title"]) == limit  # what the load stage writes to the graph

    small = _job(tmp_path, "source.items.path=movies.csv", "source.max_text_chars=500")
    assert len({i.item_id: i for i in read_catalog(small).items}[long_id].title or "") == 500

    assert _strict(read_catalog, job) == (
        "source.items: 1 row(s) of movies.csv have an empty id (empty_id; data row 303); "
        "fix the file, or run without --strict to have them counted and skipped"
    )
    movies_dup = pd.concat([_bundled("movies.csv"), extra.iloc[[0, 1]]])
    _write(movies_dup, tmp_path / "dups.csv")
    assert _strict(read_catalog, _job(tmp_path, "source.items.path=dups.csv")) == (
        "source.items: 2 row(s) of dups.csv have an id already used by an earlier row "
        "(duplicate_id; data rows 301, 302); fix the file, or run without --strict to have them "
        "counted and skipped (the first row is kept)"
    )


def _broken_ratings(tmp_path: Path) -> Path:
    ratings = _bundled("ratings.csv")
    ratings.loc[4, "movieId"] = "999999"  # data row 5: not in the catalog
    ratings.loc[9, "movieId"] = ""  # data row 10
    ratings.loc[11, "rating"] = "four"  # data row 12
    ratings.loc[12, "rating"] = ""  # data row 13
    ratings.loc[19, "timestamp"] = "-5"  # data rows 20..24: bad timestamps
    ratings.loc[20, "timestamp"] = "NaN"
    ratings.loc[21, "timestamp"] = ""
    ratings.loc[22, "timestamp"] = "yesterday"
    ratings.loc[23, "timestamp"] = "-1"
    ratings.loc[24, "timestamp"] = "-7"  # data row 25: a sixth, beyond the first five
    ratings.loc[26, ["movieId", "timestamp"]] = ["888888", "-3"]  # data row 27: counted once, as unknown
    path = tmp_path / "ratings.csv"
    _write(ratings, path)
    return path


def test_interaction_problems_are_counted_with_their_rows(tmp_path: Path) -> None:
    _broken_ratings(tmp_path)
    job = _job(tmp_path, "source.interactions.path=ratings.csv")
    issues = InputIssues.collector()
    df = read_interactions(job, catalog=read_catalog(job, issues=issues), issues=issues)
    assert _counts(issues) == {
        "ratings.csv": {
            "empty_id": (1, [10]),
            "invalid_rating": (2, [12, 13]),
            "unknown_item": (2, [5, 27]),
            "invalid_timestamp": (6, [20, 21, 22, 23, 24]),
        }
    }
    assert len(df) == 32927 - 5  # skipped: empty id, bad ratings, unknown items
    assert df.loc[19:24, "ts"].isna().all() and df.loc[18, "ts"] == 964981327
    assert df["item_id"].isin({m for m in _bundled("movies.csv")["movieId"]}).all()

    # the recommend stage's split reading counts the same problems
    split_issues = InputIssues.collector()
    recommend_split(job, issues=split_issues)
    assert _counts(split_issues) == _counts(issues)

    assert _strict(read_interactions, job) == (
        "source.interactions: 1 row(s) of ratings.csv have an empty id (empty_id; data row 10); "
        "fix the file, or run without --strict to have them counted and skipped"
    )


def test_non_numeric_ratings_and_bad_timestamps_raise_in_strict_mode(tmp_path: Path) -> None:
    ratings = _bundled("ratings.csv")
    ratings.loc[[6, 99], "rating"] = ["n/a", "5 stars"]
    _write(ratings, tmp_path / "ratings.csv")
    job = _job(tmp_path, "source.interactions.path=ratings.csv")
    assert _strict(read_interactions, job) == (
        "source.interactions: 2 row(s) of ratings.csv have a rating that is not a number "
        "(invalid_rating; data rows 7, 100); fix the file, or run without --strict to have them "
        "counted and skipped"
    )
    ratings = _bundled("ratings.csv")
    ratings.loc[[0, 1, 2, 3, 4, 5], "timestamp"] = ["-1", "NaN", "", "x", "-2", "-3"]
    _write(ratings, tmp_path / "ratings.csv")
    assert _strict(read_interactions, job) == (
        "source.interactions: 6 row(s) of ratings.csv have a timestamp that is negative, not a number "
        "or NaN (invalid_timestamp; first data rows 1, 2, 3, 4, 5); fix the file, or run without "
        "--strict to have them counted and kept without a timestamp"
    )


def test_interactions_of_items_left_out_by_the_limit_are_not_problems(tmp_path: Path) -> None:
    _broken_ratings(tmp_path)
    job = _job(tmp_path, "source.interactions.path=ratings.csv", "source.items.limit=10")
    issues = InputIssues.collector()
    catalog = read_catalog(job, issues=issues)
    df = read_interactions(job, catalog=catalog, issues=issues)
    assert set(df["item_id"]) <= catalog.used_ids and len(catalog.used_ids) == 10
    assert _counts(issues)["ratings.csv"]["unknown_item"] == (2, [5, 27])


def test_fact_file_rows_about_unknown_items_and_misfits_are_counted(tmp_path: Path) -> None:
    gold = _bundled("gold_facts.tsv")
    gold.loc[0, "item_id"] = "999999"  # data row 1
    gold.loc[1, "relation"] = "LIKES"  # data row 2: not an ontology relation
    gold.loc[2, "item_id"] = ""  # data row 3
    gold.loc[3, "object"] = "B" * 20_000  # data row 4
    _write(gold, tmp_path / "gold.tsv")
    loaded = load(write_job(tmp_path, llm_enabled=False), overrides=["source.facts.0.path=gold.tsv"])
    job, issues = loaded.job, InputIssues.collector()
    spec = job.source.facts[0]
    catalog = read_catalog(job, issues=issues)
    facts, rejects = read_fact_file(job, loaded.ontology, spec, 0, catalog=catalog, issues=issues)
    assert _counts(issues) == {
        "gold.tsv": {
            "empty_id": (1, [3]),
            "not_in_ontology": (1, [2]),
            "unknown_item": (1, [1]),
            "text_too_long": (1, [4]),
        }
    }
    assert len(facts) == 1422 - 2 and len(rejects) == 2
    assert rejects[0].startswith("gold.tsv:3: ('1', 'LIKES',")  # file line 3 = data row 2
    assert max(len(f.object) for f in facts) == job.source.max_text_chars
    assert _strict(read_fact_file, job, loaded.ontology, spec, 0, catalog=catalog) == (
        "source.facts[0]: 1 row(s) of gold.tsv have an empty id (empty_id; data row 3); "
        "fix the file, or run without --strict to have them counted and skipped"
    )


def test_user_rows_without_an_id_and_over_long_tags_are_counted(tmp_path: Path) -> None:
    tags = _bundled("tags.csv")
    tags.loc[0, "userId"] = ""
    tags.loc[5, "tag"] = "C" * 20_000
    _write(tags, tmp_path / "tags.csv")
    job = _job(tmp_path, "source.users.path=tags.csv")
    issues = InputIssues.collector()
    users = read_users(job, issues=issues)
    assert _counts(issues) == {"tags.csv": {"empty_id": (1, [1]), "text_too_long": (1, [6])}}
    assert all(len(u.text["tag"]) <= job.source.users.max_text_chars for u in users)  # type: ignore[union-attr]


def test_a_latin1_file_declared_as_utf8_fails_naming_line_byte_and_setting(tmp_path: Path) -> None:
    # the bundled catalog re-saved as Latin-1: its first non-ASCII title is "Léon: ..." on line 40
    path = tmp_path / "movies.csv"
    path.write_bytes((DEMO_DIR / "movies.csv").read_text(encoding="utf-8").encode("latin-1"))
    raw = path.read_bytes()
    offset = raw.index(b"\xe9")
    assert raw.count(b"\n", 0, offset) + 1 == 40
    job = _job(tmp_path, "source.items.path=movies.csv")
    with pytest.raises(DataError) as info:
        read_catalog(job)
    assert str(info.value) == (
        f"source.items: movies.csv is not valid utf-8 at line 40, byte {offset} (b'\\xe9'); "
        "set source.items.encoding to the file's real encoding (e.g. encoding: latin-1 or cp1252), "
        "or re-save the file as utf-8"
    )
    fixed = _job(tmp_path, "source.items.path=movies.csv", "source.items.encoding=latin-1")
    titles = {i.item_id: i.title for i in read_catalog(fixed).items}
    assert titles == {i.item_id: i.title for i in read_catalog(_job(tmp_path)).items}
    assert titles["293"] == "Léon: The Professional (a.k.a. The Professional) (Léon) (1994)"


def test_strict_travels_from_run_job_to_the_stage_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kg_enhance.api import run_job
    from kg_enhance.stages import STAGE_REGISTRY, Stage, StageContext, StageResult

    seen: list[bool] = []

    class Probe(Stage[StageResult]):
        name = "extract"
        section = "extract"

        def run(self, ctx: StageContext) -> StageResult:
            seen.append(ctx.strict)
            return StageResult()

    monkeypatch.setitem(STAGE_REGISTRY, "extract", Probe())
    job = write_job(tmp_path, llm_enabled=False)
    run_job(job, only=["extract"], progress=False)
    run_job(job, only=["extract"], progress=False, strict=True)
    assert seen == [False, True]


def test_cli_run_has_a_strict_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kg_enhance import api
    from kg_enhance.cli import main

    calls: list[dict[str, Any]] = []

    def fake_run_job(job: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        raise DataError("source.items: stop here")

    monkeypatch.setattr(api, "run_job", fake_run_job)
    result = CliRunner().invoke(main, ["run", str(write_job(tmp_path)), "--strict"])
    assert result.exit_code == DataError.exit_code
    assert calls[0]["strict"] is True


def test_reading_a_fact_file_for_some_heads_gives_exactly_their_facts(tmp_path: Path) -> None:
    gold = _bundled("gold_facts.tsv")
    gold.loc[3, "relation"] = "NOT_A_RELATION"  # a reject, about a head in the subset
    _write(gold, tmp_path / "gold.tsv")
    loaded = load(write_job(tmp_path, llm_enabled=False), overrides=["source.facts.0.path=gold.tsv"])
    job = loaded.job
    every, every_rejects = read_fact_file(job, loaded.ontology, job.source.facts[0], 0)
    heads = set(gold["item_id"].iloc[:40])
    some, some_rejects = read_fact_file(job, loaded.ontology, job.source.facts[0], 0, heads=heads)
    assert 0 < len(some) < len(every)
    assert some == [f for f in every if f.head_id in heads]
    assert some_rejects == every_rejects and len(some_rejects) == 1
