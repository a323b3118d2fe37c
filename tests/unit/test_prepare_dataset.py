"""`kg-enhance datasets prepare ml-latest-small` writes the full job data from the public releases,
and examples/jobs/ml-latest-small.yaml validates against it."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from kg_enhance import api
from kg_enhance.cli import main
from kg_enhance.datasets.movielens import DEFAULT_SOURCE, DatasetSourceError, prepare_ml_latest_small
from tests.support.helpers import service_missing

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "examples" / "jobs" / "ml-latest-small.yaml"


@pytest.fixture(scope="module")
def source() -> Path:
    if not (DEFAULT_SOURCE / "ml-latest-small").is_dir():
        service_missing(
            f"the MovieLens/HetRec releases are not at {DEFAULT_SOURCE} (../shared/data beside the checkout)"
        )
    return DEFAULT_SOURCE


def _scale_gold_facts(monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """benchmarks/scale.py's gold facts; its import sets KG_ENHANCE_* defaults, kept out of this process."""
    monkeypatch.setattr(os, "environ", os.environ.copy())
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    scale = sys.modules.get("scale") or importlib.import_module("scale")
    gold: pd.DataFrame = scale.gold_facts()
    return gold


def test_prepared_data_match_the_releases_and_the_example_job_validates(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ml"
    got = CliRunner().invoke(
        main, ["datasets", "prepare", "ml-latest-small", "--source", str(source), "--out", str(out)]
    )
    assert got.exit_code == 0, got.output
    assert "9742 movies, 100836 ratings" in got.output

    movies = pd.read_csv(out / "movies.csv", dtype=str)
    ratings = pd.read_csv(out / "ratings.csv", dtype=str)
    gold = pd.read_csv(out / "gold_facts.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert len(movies) == 9742 and len(ratings) == 100836
    assert (out / "movies.csv").read_bytes() == (source / "ml-latest-small" / "movies.csv").read_bytes()
    assert (out / "LICENSE-movielens.txt").is_file() and (out / "LICENSE-hetrec.txt").is_file()

    expected = _scale_gold_facts(monkeypatch)
    expected = expected[expected["item_id"].isin(set(movies["movieId"]))]
    assert len(gold) == len(expected) > 50_000
    assert gold.reset_index(drop=True).equals(expected.reset_index(drop=True))
    assert set(gold["relation"]) == {
        "DIRECTED_BY",
        "PRODUCED_IN",
        "HAS_THEME",
    }  # genres: the catalog's column
    assert set(gold["item_id"]) <= set(movies["movieId"])

    monkeypatch.setenv("KG_ENHANCE_ML_DATA", str(out))
    spec = api.validate_job(JOB)
    assert spec.name == "ml-latest-small" and [f.name for f in spec.source.facts] == ["hetrec"]
    assert spec.kge.model == "TransE" and spec.kge.dim == 64 and spec.kge.epochs == 60
    assert [m.type for m in spec.recommender.models] == [
        "bpr_mf",
        "lightgcn",
        "kg_bpr",
        "kg_lightgcn",
        "kg_knn",
    ]
    assert not spec.llm.enabled


def test_a_missing_release_is_a_one_line_error_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "src" / "ml-latest-small").mkdir(parents=True)
    with pytest.raises(DatasetSourceError, match=r"source file\(s\) missing under .*pass --source"):
        prepare_ml_latest_small(tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    got = CliRunner().invoke(
        main,
        [
            "datasets",
            "prepare",
            "ml-latest-small",
            "--source",
            str(tmp_path / "src"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert (
        got.exit_code == 3
        and got.output.count("\n") == 1
        and got.output.startswith("error: ml-latest-small:")
    )
