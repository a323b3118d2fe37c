"""Reading the files a job declares into pipeline records.

Everything is read as strings first (catalog ids are ids, not numbers), with the
job's declared encoding; problems raise :class:`DataError` naming file and column.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from kg_enhance.config.job import resolve_job_path
from kg_enhance.config.models import FactFile, ItemsSource, JobSpec, TableSource
from kg_enhance.errors import DataError
from kg_enhance.io.rdf import RDF_FORMATS, SUFFIX_FORMATS, read_rdf_facts
from kg_enhance.names import clean_name
from kg_enhance.ontology.models import Ontology
from kg_enhance.types import Fact, Item

_SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".dat": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}


def read_table(job: JobSpec, source: TableSource, *, what: str) -> pd.DataFrame:
    path = resolve_job_path(job, source.path)
    if not path.is_file():
        raise DataError(
            f"source.{what}.path: file {source.path!r} not found (resolved to {path}); fix the path"
        )
    fmt = source.format or _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"source.{what}: cannot tell the format of {path.name}; set source.{what}.format")
    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(
                path,
                sep="," if fmt == "csv" else "\t",
                dtype=str,
                keep_default_na=False,
                encoding=source.encoding,
                quoting=0 if fmt == "csv" else 3,
            )
        if fmt == "jsonl":
            return pd.read_json(path, lines=True, dtype=False, encoding=source.encoding).astype(str)
        return pd.read_parquet(path).astype(str)
    except UnicodeDecodeError as e:
        raise DataError(
            f"source.{what}: {path.name} is not valid {source.encoding} (byte {e.start}); set source.{what}.encoding"
        ) from e
    except (pd.errors.ParserError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(
            f"source.{what}: cannot parse {path.name} as {fmt}: {first}; check the file and format"
        ) from e


def _require(df: pd.DataFrame, columns: Sequence[str | None], *, what: str, path: str) -> None:
    missing = [c for c in columns if c and c not in df.columns]
    if missing:
        raise DataError(
            f"source.{what}: column(s) {', '.join(missing)} not in {path}; available: {', '.join(map(str, df.columns))}"
        )


def read_items(job: JobSpec) -> tuple[list[Item], pd.DataFrame]:
    src: ItemsSource = job.source.items
    df = read_table(job, src, what="items")
    _require(
        df,
        [src.id_column, src.title_column, *src.text_fields, *(f.column for f in src.fact_columns)],
        what="items",
        path=src.path,
    )
    df = df[df[src.id_column].str.strip() != ""]
    df = df.drop_duplicates(subset=[src.id_column], keep="first")
    if src.limit:
        df = df.head(src.limit)
    items = []
    for row in df.to_dict(orient="records"):
        item_id = str(row[src.id_column]).strip()
        title = str(row[src.title_column]).strip() if src.title_column else None
        text = {f: clean_name(str(row[f])) for f in src.text_fields}
        props = {k: v for k, v in row.items() if k != src.id_column and v != ""}
        items.append(Item(item_id=item_id, title=title, text=text, properties=props))
    return items, df


def read_users(job: JobSpec) -> list[Item]:
    """Users with text (``source.users``), one record per user; several rows per user are joined."""
    src = job.source.users
    if src is None:
        raise DataError("source.users: not declared; user-side extraction needs a table of user text")
    df = read_table(job, src, what="users")
    _require(df, [src.id_column, *src.text_fields], what="users", path=src.path)
    df = df.assign(_uid=df[src.id_column].str.strip())
    df = df[df["_uid"] != ""]
    users: list[Item] = []
    for user_id, group in df.groupby("_uid", sort=False):
        text: dict[str, str] = {}
        for f in src.text_fields:
            values = [clean_name(v) for v in group[f].tolist()]
            distinct = list(dict.fromkeys(v for v in values if v))
            text[f] = "; ".join(distinct)[: src.max_text_chars]
        if any(text.values()):
            users.append(Item(item_id=str(user_id), text=text))
    return users


def catalog_facts(job: JobSpec, ontology: Ontology, items_df: pd.DataFrame) -> list[Fact]:
    """Facts that the catalog states outright (``source.items.fact_columns``)."""
    src = job.source.items
    out: list[Fact] = []
    for i, spec in enumerate(src.fact_columns):
        where = f"source.items.fact_columns[{i}]"
        if spec.relation not in ontology.relations:
            raise DataError(
                f"{where}.relation: {spec.relation!r} is not in the ontology; use one of {', '.join(ontology.relations)}"
            )
        if spec.object_type not in ontology.relations[spec.relation].tail:
            raise DataError(
                f"{where}.object_type: {spec.object_type!r} is not allowed for {spec.relation} "
                f"(allowed: {', '.join(ontology.relations[spec.relation].tail)})"
            )
        ignore = set(spec.ignore)
        for item_id, cell in zip(items_df[src.id_column], items_df[spec.column], strict=True):
            values = cell.split(spec.separator) if spec.separator else [cell]
            for value in values:
                name = clean_name(value)
                if not name or name in ignore:
                    continue
                out.append(
                    Fact(
                        head_id=str(item_id).strip(),
                        relation=spec.relation,
                        object=name,
                        object_type=spec.object_type,
                        source="catalog",
                        source_field=spec.column,
                    )
                )
    return out


def read_fact_file(
    job: JobSpec, ontology: Ontology, spec: FactFile, index: int
) -> tuple[list[Fact], list[str]]:
    """Known facts from a TSV/CSV file; rows that do not fit the ontology are returned as rejects, not dropped."""
    what = f"facts[{index}]"
    path = resolve_job_path(job, spec.path)
    rdf_format = spec.format if spec.format in RDF_FORMATS else SUFFIX_FORMATS.get(path.suffix.lower())
    if rdf_format is not None and spec.format in (None, rdf_format):
        if not path.is_file():
            raise DataError(
                f"source.{what}.path: file {spec.path!r} not found (resolved to {path}); fix the path"
            )
        prefix = spec.item_prefix or f"{job.graph.rdf_base}item:"
        return read_rdf_facts(path, fmt=rdf_format, ontology=ontology, source=spec.name, item_prefix=prefix)
    df = read_table(job, spec, what=what)
    cols = [spec.item_column, spec.relation_column, spec.object_column, spec.object_type_column]
    _require(df, cols, what=what, path=spec.path)
    facts: list[Fact] = []
    rejects: list[str] = []
    for n, row in enumerate(df[cols].itertuples(index=False, name=None), start=2):
        item_id, relation, obj, obj_type = (str(v).strip() for v in row)
        name = clean_name(obj)
        rel = ontology.relations.get(relation)
        if rel is None or obj_type not in rel.tail or not name or not item_id:
            rejects.append(
                f"{Path(spec.path).name}:{n}: ({item_id!r}, {relation!r}, {obj!r}, {obj_type!r}) does not fit the ontology"
            )
            continue
        facts.append(
            Fact(
                head_id=item_id,
                relation=relation,
                object=name,
                object_type=obj_type,
                source=spec.name,
                source_field=Path(spec.path).name,
            )
        )
    return facts, rejects


def read_interactions(job: JobSpec) -> pd.DataFrame:
    """Interactions as a DataFrame with ``user_id, item_id, rating, ts`` (rating/ts may be NaN)."""
    src = job.source.interactions
    if src is None:
        raise DataError("source.interactions: not declared; the recommend stage needs user-item interactions")
    df = read_table(job, src, what="interactions")
    _require(
        df,
        [src.user_column, src.item_column, src.rating_column, src.timestamp_column],
        what="interactions",
        path=src.path,
    )
    out = pd.DataFrame(
        {"user_id": df[src.user_column].str.strip(), "item_id": df[src.item_column].str.strip()}
    )
    out["rating"] = (
        pd.to_numeric(df[src.rating_column], errors="coerce") if src.rating_column else float("nan")
    )
    out["ts"] = (
        pd.to_numeric(df[src.timestamp_column], errors="coerce") if src.timestamp_column else float("nan")
    )
    bad = (out["user_id"] == "") | (out["item_id"] == "")
    if src.rating_column:
        bad |= out["rating"].isna()
    if bad.any():
        raise DataError(
            f"source.interactions: {int(bad.sum())} row(s) of {src.path} have an empty id or a non-numeric rating "
            f"(first at data row {int(bad.to_numpy().nonzero()[0][0]) + 1}); clean the file or fix the column mapping"
        )
    return out
