"""A generated product catalog: the bundled non-movie example (``products_demo/``), no interactions.

The project has no licensed non-movie data, so it makes its own: a seeded generator
writes ``products.csv`` (one row per product: id, title, category, description) and
``gold_facts.tsv`` (what each description states: brand, materials, colour, activities),
for the ontology ``schemas/products.yaml``. Brands are invented; every gold name appears
verbatim in its product's description, so ``text`` grounding can find all of them and
the gold file scores an extraction exactly. The same ``seed`` and ``n_items`` always give
byte-identical files (a test regenerates and compares them).

``python -m kg_enhance.datasets.products [--out DIR] [--items N] [--seed S]`` rewrites them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from pathlib import Path

from kg_enhance.paths import PACKAGE_DIR

PRODUCTS_DIR = PACKAGE_DIR / "datasets" / "products_demo"

#: invented brand names (no real company)
BRANDS = (
    "Norrvik",
    "Altamira Works",
    "Kestrel & Finch",
    "Brightwater",
    "Oakhollow",
    "Tundra Lane",
    "Maple Forge",
    "Copperline",
    "Silvaro",
    "Eastmere",
    "Quillon",
    "Harbor Fox",
)
#: the closed category list (also the ontology's Category vocabulary)
CATEGORIES = ("Backpack", "Tent", "Jacket", "Lamp", "Kettle", "Chair", "Water Bottle", "Sleeping Bag")
MATERIALS = (
    "bamboo",
    "recycled polyester",
    "stainless steel",
    "oak",
    "merino wool",
    "aluminium",
    "waxed canvas",
    "leather",
    "ripstop nylon",
    "cork",
)
COLOURS = ("forest green", "slate grey", "ochre", "navy blue", "charcoal", "sand", "burgundy")
ACTIVITIES = ("camping", "commuting", "hiking", "travel", "cooking", "trail running", "reading", "fishing")
STYLES = ("Trail", "Urban", "Summit", "Harbor", "Nomad", "Ridge", "Meadow", "Drift")
CLOSINGS = (
    "Ships in a recyclable box.",
    "Backed by a two-year warranty.",
    "Assembled by hand in small batches.",
    "Easy to clean with a damp cloth.",
    "Each piece is checked before it ships.",
)


def generate(n_items: int = 200, seed: int = 7) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``(products, gold_facts)`` rows: deterministic in ``n_items`` and ``seed``."""
    rng = random.Random(seed)
    products: list[dict[str, str]] = []
    gold: list[dict[str, str]] = []
    for n in range(1, n_items + 1):
        pid = f"P{n:04d}"
        brand, category = rng.choice(BRANDS), rng.choice(CATEGORIES)
        materials = rng.sample(MATERIALS, k=rng.choice((1, 1, 2)))
        colour = rng.choice(COLOURS)
        activities = rng.sample(ACTIVITIES, k=rng.choice((1, 2)))
        title = f"{brand} {rng.choice(STYLES)} {category}"
        made_of = materials[0] + (f" with {materials[1]} trim" if len(materials) > 1 else "")
        uses = " and ".join(activities)
        description = (
            f"A {colour} {category.lower()} made of {made_of} by {brand}. "
            f"Designed for {uses}. {rng.choice(CLOSINGS)}"
        )
        products.append({"product_id": pid, "title": title, "category": category, "description": description})
        facts = [("MADE_BY", brand, "Brand"), ("HAS_COLOUR", colour, "Colour")]
        facts += [("MADE_OF", m, "Material") for m in materials]
        facts += [("SUITED_FOR", a, "Activity") for a in activities]
        gold += [{"item_id": pid, "relation": r, "object": o, "object_type": t} for r, o, t in facts]
    return products, gold


def _table(rows: list[dict[str, str]], *, delimiter: str) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_products(out_dir: Path = PRODUCTS_DIR, *, n_items: int = 200, seed: int = 7) -> dict[str, int]:
    """Write ``products.csv`` and ``gold_facts.tsv`` into ``out_dir``; returns row counts."""
    products, gold = generate(n_items, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "products.csv").write_text(_table(products, delimiter=","), encoding="utf-8")
    (out_dir / "gold_facts.tsv").write_text(_table(gold, delimiter="\t"), encoding="utf-8")
    return {"products": len(products), "gold_facts": len(gold)}


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    parser = argparse.ArgumentParser(description="Generate the bundled product catalog example.")
    parser.add_argument("--out", type=Path, default=PRODUCTS_DIR)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(write_products(args.out, n_items=args.items, seed=args.seed)))
