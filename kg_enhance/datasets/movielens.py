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
from kg_enhance.paths import PACKAGE_DIR

DEMO_DIR = PACKAGE_DIR / "datasets" / "movielens_demo"

#: HetRec files that hold gold facts, with the ontology relation and type they express
HETREC_FACTS = {
    "movie_directors.dat": ("DIRECTED_BY", "Person", "directorName"),
    "movie_genres.dat": ("HAS_GENRE", "Genre", "genre"),
    "movie_countries.dat": ("PRODUCED_IN", "Country", "country"),
}


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: file not found; pass the folder that holds the MovieLens/HetRec release")
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
