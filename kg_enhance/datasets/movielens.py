"""MovieLens ``ml-latest-small`` + HetRec 2011 loaders, and the bundled demo subset.

The loaders read the full public files (``../shared/data/movielens`` in this
project's workspace, or wherever you unpacked the GroupLens releases); the demo
subset is a slice of them shipped inside the package, licenses included.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from kg_enhance.errors import DataError
from kg_enhance.paths import PACKAGE_DIR, REPO_DIR

DEMO_DIR = PACKAGE_DIR / "datasets" / "movielens_demo"
#: where this project's workspace keeps the public releases (``ml-latest-small/``, ``hetrec2011-movielens-2k/``)
DEFAULT_SOURCE = REPO_DIR.parent / "shared" / "data" / "movielens"
#: where ``kg-enhance datasets prepare ml-latest-small`` writes by default (``examples/jobs/ml-latest-small.yaml`` reads it)
DEFAULT_PREPARED = REPO_DIR / "data" / "ml-latest-small"
#: datasets ``prepare_dataset`` can write
PREPARABLE = ("ml-latest-small",)


class DatasetSourceError(DataError):
    """A public release file a dataset is prepared from is missing or unreadable."""


#: HetRec files that hold gold facts, with the ontology relation and type they express
HETREC_FACTS = {
    "movie_directors.dat": ("DIRECTED_BY", "Person", "directorName"),
    "movie_genres.dat": ("HAS_GENRE", "Genre", "genre"),
    "movie_countries.dat": ("PRODUCED_IN", "Country", "country"),
}


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DatasetSourceError(
            f"{path}: file not found; pass the folder that holds the MovieLens/HetRec release"
        )
    return path


def load_ml_latest_small(root: Path) -> dict[str, pd.DataFrame]:
    """``movies``, ``ratings``, ``tags`` and ``links`` of ``ml-latest-small`` as DataFrames."""
    root = Path(root)
    return {
        "movies": pd.read_csv(_need(root / "movies.csv"), dtype={"movieId": "int64"}),
        "ratings": pd.read_csv(_need(root / "ratings.csv")),
        "tags": pd.read_csv(_need(root / "tags.csv"), dtype={"tag": "string"}, keep_default_na=False),
        "links": pd.read_csv(_need(root / "links.csv"), dtype={"imdbId": "string", "tmdbId": "string"}),
    }


def load_hetrec_facts(root: Path) -> pd.DataFrame:
    """HetRec directors, genres and countries as ``item_id, relation, object, object_type`` rows.

    The files are tab separated UTF-8 with a header row (the directors header uses a
    space where a tab belongs, so columns are taken by position).
    """
    frames = []
    for name, (relation, object_type, _column) in HETREC_FACTS.items():
        path = _need(Path(root) / name)
        df = pd.read_csv(path, sep="\t", header=None, skiprows=1, dtype=str, encoding="utf-8", quoting=3)
        obj = df.iloc[:, -1].astype("string").str.strip()
        out = pd.DataFrame(
            {
                "item_id": df.iloc[:, 0].astype(int),
                "relation": relation,
                "object": obj,
                "object_type": object_type,
            }
        )
        frames.append(out[out["object"].notna() & (out["object"] != "")])
    return pd.concat(frames, ignore_index=True)


def hetrec_gold_facts(hetrec: Path) -> pd.DataFrame:
    """HetRec directors and countries, and tags as themes (genres come from the catalog).

    ``item_id, relation, object, object_type`` rows (all strings) for every HetRec movie;
    ``hetrec`` is the ``hetrec2011-movielens-2k`` folder.
    """
    hetrec = Path(hetrec)
    gold = load_hetrec_facts(hetrec)
    gold = gold[gold["relation"] != "HAS_GENRE"]
    tags = pd.read_csv(_need(hetrec / "tags.dat"), sep="\t", encoding="latin-1", dtype=str)
    movie_tags = pd.read_csv(_need(hetrec / "movie_tags.dat"), sep="\t", encoding="latin-1", dtype=str)
    themes = movie_tags.merge(tags, left_on="tagID", right_on="id")
    themes = themes[themes["value"].notna() & (themes["value"].str.strip() != "")]
    theme_rows = pd.DataFrame(
        {
            "item_id": themes["movieID"],
            "relation": "HAS_THEME",
            "object": themes["value"],
            "object_type": "Theme",
        }
    )
    out = pd.concat([gold.astype({"item_id": str}), theme_rows], ignore_index=True)
    return out.astype(str)


def prepare_ml_latest_small(source: Path | None = None, out_dir: Path | None = None) -> dict[str, int]:
    """Write the full ``ml-latest-small`` job data into ``out_dir``: the release's ``movies.csv`` and
    ``ratings.csv`` unchanged, ``gold_facts.tsv`` (:func:`hetrec_gold_facts` of the catalog's movies)
    and both licence texts.

    ``source`` (default :data:`DEFAULT_SOURCE`) holds ``ml-latest-small/`` and
    ``hetrec2011-movielens-2k/``; ``out_dir`` defaults to :data:`DEFAULT_PREPARED`. Every
    source file is checked before anything is written. Returns row counts per written file.
    """
    source = Path(source if source is not None else DEFAULT_SOURCE).expanduser()
    out = Path(out_dir if out_dir is not None else DEFAULT_PREPARED).expanduser()
    ml, het = source / "ml-latest-small", source / "hetrec2011-movielens-2k"
    needed = [ml / n for n in ("movies.csv", "ratings.csv", "README.txt")] + [
        het / n for n in (*HETREC_FACTS, "tags.dat", "movie_tags.dat", "readme.txt")
    ]
    missing = [str(p.relative_to(source)) for p in needed if not p.is_file()]
    if missing:
        raise DatasetSourceError(
            f"ml-latest-small: {len(missing)} source file(s) missing under {source} ({', '.join(missing[:4])}"
            f"{', ...' if len(missing) > 4 else ''}); pass --source, the folder holding ml-latest-small/ and "
            "hetrec2011-movielens-2k/ as GroupLens releases them"
        )
    try:
        movies = pd.read_csv(ml / "movies.csv", dtype=str)
        ratings = pd.read_csv(ml / "ratings.csv", dtype=str, usecols=["movieId"])
        gold = hetrec_gold_facts(het)
    except ValueError as e:  # pandas' ParserError and UnicodeDecodeError are ValueErrors
        raise DatasetSourceError(f"ml-latest-small: cannot read the release under {source}: {e}") from e
    for column in ("movieId", "title", "genres"):
        if column not in movies.columns:
            raise DatasetSourceError(
                f"{ml / 'movies.csv'}: no {column!r} column; is this the GroupLens ml-latest-small release?"
            )
    gold = gold[gold["item_id"].isin(set(movies["movieId"]))]
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ml / "movies.csv", out / "movies.csv")
    shutil.copyfile(ml / "ratings.csv", out / "ratings.csv")
    gold.to_csv(out / "gold_facts.tsv", sep="\t", index=False)
    shutil.copyfile(ml / "README.txt", out / "LICENSE-movielens.txt")
    shutil.copyfile(het / "readme.txt", out / "LICENSE-hetrec.txt")
    return {"movies": len(movies), "ratings": len(ratings), "gold_facts": len(gold)}


def prepare_dataset(name: str, *, source: Path | None = None, out_dir: Path | None = None) -> dict[str, int]:
    """Write dataset ``name`` (one of :data:`PREPARABLE`) from its public release into ``out_dir``."""
    if name != "ml-latest-small":
        raise DataError(f"datasets prepare: unknown dataset {name!r}; choose one of {', '.join(PREPARABLE)}")
    return prepare_ml_latest_small(source, out_dir)


def build_demo_subset(source: Path, out_dir: Path = DEMO_DIR, *, n_items: int = 300) -> dict[str, int]:
    """Write the bundled demo subset: the ``n_items`` most-rated movies and everything about them.

    ``source`` is the folder holding ``ml-latest-small/`` and ``hetrec2011-movielens-2k/``.
    Returns row counts per written file.
    """
    source = Path(source)
    ml = load_ml_latest_small(source / "ml-latest-small")
    counts = ml["ratings"].groupby("movieId").size().sort_values(ascending=False, kind="mergesort")
    keep = set(counts.index[:n_items].tolist())
    movies = ml["movies"][ml["movies"]["movieId"].isin(keep)].merge(ml["links"], on="movieId", how="left")
    movies = movies.sort_values("movieId")
    movies["year"] = movies["title"].str.extract(r"\((\d{4})\)\s*$", expand=False)
    ratings = ml["ratings"][ml["ratings"]["movieId"].isin(keep)].sort_values(
        ["userId", "timestamp", "movieId"]
    )
    tags = ml["tags"][ml["tags"]["movieId"].isin(keep)].sort_values(["userId", "timestamp", "movieId"])
    gold = load_hetrec_facts(source / "hetrec2011-movielens-2k")
    gold = gold[gold["item_id"].isin(keep)].drop_duplicates().sort_values(["item_id", "relation", "object"])

    out_dir.mkdir(parents=True, exist_ok=True)
    movies.to_csv(out_dir / "movies.csv", index=False)
    ratings.to_csv(out_dir / "ratings.csv", index=False)
    tags.to_csv(out_dir / "tags.csv", index=False)
    gold.to_csv(out_dir / "gold_facts.tsv", sep="\t", index=False)
    shutil.copy(source / "ml-latest-small" / "README.txt", out_dir / "LICENSE-movielens.txt")
    shutil.copy(source / "hetrec2011-movielens-2k" / "readme.txt", out_dir / "LICENSE-hetrec.txt")
    return {"movies": len(movies), "ratings": len(ratings), "tags": len(tags), "gold_facts": len(gold)}


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    parser = argparse.ArgumentParser(description="Rebuild the bundled MovieLens demo subset.")
    parser.add_argument("source", type=Path, help="folder with ml-latest-small/ and hetrec2011-movielens-2k/")
    parser.add_argument("--items", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(build_demo_subset(args.source, n_items=args.items)))
