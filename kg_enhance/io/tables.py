"""Reading the files a job declares into pipeline records.

Everything is read as strings first (catalog ids are ids, not numbers), with the
job's declared encoding; a file that cannot be read as declared raises
:class:`DataError` naming file and column.

Problems *inside* a readable file are never silent. Each reader counts them into an
:class:`InputIssues` (per file and reason: a count and the first data rows; the load and
recommend stages put it in ``report.json`` as ``graph.input_issues`` and
``recommend.input_issues``) and goes on as :data:`REASONS` says; a collector made with
``InputIssues.collector(strict=True)`` (``kg-enhance run --strict``) raises a one-line
:class:`DataError` at the first problem instead.

Odd encodings are not replaced with guesses: bytes that do not decode in the declared
``encoding`` raise a one-line :class:`DataError` naming the file, the line and byte
offset, and the ``encoding:`` key to set, strict or not (replacement characters would
end up in titles and entity names).

The checks are vectorised pandas; the only per-row Python is building the records.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from kg_enhance.config.job import resolve_job_path
from kg_enhance.config.models import FactFile, ItemsSource, JobSpec, TableSource
from kg_enhance.errors import DataError
from kg_enhance.io.rdf import RDF_FORMATS, SUFFIX_FORMATS, read_rdf_facts
from kg_enhance.names import clean_name
from kg_enhance.ontology.models import Ontology
from kg_enhance.types import Fact, Item

logger = logging.getLogger(__name__)

_SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".dat": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}

#: reason -> (what the counted rows have, what happens to them without --strict).
#: A row is counted once, for the first reason in this order that applies to it.
REASONS: dict[str, tuple[str, str]] = {
    "empty_id": ("an empty id", "skipped"),
    "duplicate_id": ("an id already used by an earlier row", "skipped (the first row is kept)"),
    "invalid_rating": ("a rating that is not a number", "skipped"),
    "unknown_item": ("an item id that is not in the catalog", "skipped"),
    "not_in_ontology": (
        "a fact that does not fit the ontology",
        "skipped (listed in load/rejected_facts.txt)",
    ),
    "invalid_timestamp": (
        "a timestamp that is negative, not a number or NaN",
        "kept without a timestamp",
    ),
    "text_too_long": ("a value longer than source.max_text_chars", "cut to source.max_text_chars"),
}
FIRST_ROWS = 5


class IssueCount(BaseModel):
    """One reason in one file: ``count`` rows, the first of them (1-based data rows) in ``first_rows``."""

    model_config = ConfigDict(extra="forbid")

    count: int
    first_rows: list[int]


class InputIssues(BaseModel):
    """Problems counted while reading a job's input files (report key ``input_issues``).

    ``files.<path>.<reason>`` is ``{count, first_rows}``: ``path`` is the file as the job
    declares it (``source.*.path``), ``reason`` a key of :data:`REASONS`
    (``empty_id``, ``duplicate_id``, ``invalid_rating``, ``unknown_item``,
    ``not_in_ontology``, ``invalid_timestamp``, ``text_too_long``), ``count`` the number
    of rows with it (facts, for RDF files), ``first_rows`` the first five as 1-based data
    rows (row 1 is the first row under the header; line N of a JSON-lines file; empty
    for RDF). ``total`` is the sum of all counts. Rows beyond ``source.items.limit``,
    and interactions of catalog items left out by it, are not problems and not counted.
    """

    model_config = ConfigDict(extra="forbid")

    total: int = 0
    files: dict[str, dict[str, IssueCount]] = Field(default_factory=dict)
    _strict: bool = PrivateAttr(default=False)
    _log: bool = PrivateAttr(default=True)

    @classmethod
    def collector(cls, *, strict: bool = False, log: bool = True) -> InputIssues:
        """An empty collector; with ``strict`` the first :meth:`add` raises a :class:`DataError`,
        otherwise each :meth:`add` logs a warning (unless ``log`` is false)."""
        issues = cls()
        issues._strict = strict
        issues._log = log
        return issues

    @property
    def strict(self) -> bool:
        return self._strict

    def add(
        self,
        what: str,
        path: str,
        reason: str,
        rows: np.ndarray | Sequence[int],
        *,
        count: int | None = None,
    ) -> None:
        """Count ``rows`` (1-based data rows) of ``path`` (``source.<what>``) under ``reason``.

        ``count`` overrides ``len(rows)`` where rows have no numbers (RDF). Logs a
        warning, or raises :class:`DataError` in strict mode.
        """
        numbers = np.asarray(rows, dtype=np.int64)
        n = int(numbers.size) if count is None else count
        if n == 0:
            return
        first = [int(r) for r in np.sort(numbers)[:FIRST_ROWS]]
        by_reason = self.files.setdefault(path, {})
        old = by_reason.get(reason)
        if old is not None:
            first = sorted({*old.first_rows, *first})[:FIRST_ROWS]
            n_total = old.count + n
        else:
            n_total = n
        by_reason[reason] = IssueCount(count=n_total, first_rows=first)
        self.total += n
        has, outcome = REASONS[reason]
        where = ""
        if first:
            label = "data row" if n == 1 else ("data rows" if n <= FIRST_ROWS else "first data rows")
            where = f"; {label} {', '.join(map(str, first))}"
        head = f"source.{what}: {n} row(s) of {path} have {has} ({reason}{where})"
        if self._strict:
            raise DataError(
                f"{head}; fix the file, or run without --strict to have them counted and {outcome}"
            )
        if self._log:
            logger.warning("%s: %s; counted in report.json input_issues", head, outcome)


def _rows(index: pd.Index, mask: pd.Series | np.ndarray | None = None) -> np.ndarray:
    """1-based data-row numbers of ``index`` (a RangeIndex from the reader, possibly filtered)."""
    picked = index if mask is None else index[np.asarray(mask, dtype=bool)]
    return np.asarray(picked, dtype=np.int64) + 1


def _issues(issues: InputIssues | None) -> InputIssues:
    """The caller's collector, or a quiet one whose counts nobody reads (the load stage reports them)."""
    return issues if issues is not None else InputIssues.collector(log=False)


def _decode_error(path: Path, declared: str, encoding: str, what: str) -> DataError:
    """A one-line error naming the first undecodable byte's line and offset, and the key to set."""
    raw, where = path.read_bytes(), ""
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as e:  # pandas' own offset is relative to a chunk: find the byte again
        line = raw.count(b"\n", 0, e.start) + 1
        where = f" at line {line}, byte {e.start} ({raw[e.start : e.end]!r})"
    return DataError(
        f"source.{what}: {declared} is not valid {encoding}{where}; set source.{what}.encoding "
        f"to the file's real encoding (e.g. encoding: latin-1 or cp1252), or re-save the file as {encoding}"
    )


def read_table(job: JobSpec, source: TableSource, *, what: str) -> pd.DataFrame:
    """The file as strings, with a RangeIndex (data row N is index N-1)."""
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
            df = pd.read_csv(
                path,
                sep="," if fmt == "csv" else "\t",
                dtype=str,
                keep_default_na=False,
                encoding=source.encoding,
                quoting=0 if fmt == "csv" else 3,
            )
        elif fmt == "jsonl":
            df = pd.read_json(path, lines=True, dtype=False, encoding=source.encoding).astype(str)
        else:
            df = pd.read_parquet(path).astype(str)
    except UnicodeDecodeError as e:
        raise _decode_error(path, source.path, source.encoding, what) from e
    except LookupError as e:
        raise DataError(
            f"source.{what}.encoding: {source.encoding!r} is not a known encoding; use e.g. utf-8, latin-1, cp1252"
        ) from e
    except (pd.errors.ParserError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(
            f"source.{what}: cannot parse {path.name} as {fmt}: {first}; check the file and format"
        ) from e
    return df.reset_index(drop=True)


def _require(df: pd.DataFrame, columns: Sequence[str | None], *, what: str, path: str) -> None:
    missing = [c for c in columns if c and c not in df.columns]
    if missing:
        raise DataError(
            f"source.{what}: column(s) {', '.join(missing)} not in {path}; available: {', '.join(map(str, df.columns))}"
        )


def _cut_long_text(
    df: pd.DataFrame, columns: Sequence[str], *, limit: int, issues: InputIssues, what: str, path: str
) -> pd.DataFrame:
    """Values of ``columns`` longer than ``limit`` cut to it; the rows with any are counted (``text_too_long``)."""
    if df.empty or not columns:
        return df
    over = {c: (df[c].str.len() > limit).to_numpy(dtype=bool) for c in columns}
    any_over = np.logical_or.reduce(list(over.values()))
    if not any_over.any():
        return df
    issues.add(what, path, "text_too_long", _rows(df.index, any_over))
    df = df.copy()
    for c, mask in over.items():
        if mask.any():
            df[c] = df[c].where(~mask, df[c].str.slice(0, limit))
    return df


@dataclass(frozen=True)
class Catalog:
    """The catalog as read: the items used (after ``source.items.limit``), their rows, and every valid id in the file."""

    items: list[Item]
    df: pd.DataFrame
    #: every non-empty, first-seen id of the file, including those beyond ``limit``
    ids: frozenset[str]

    @property
    def used_ids(self) -> set[str]:
        return {i.item_id for i in self.items}


def read_catalog(job: JobSpec, *, issues: InputIssues | None = None) -> Catalog:
    """The catalog: rows with an empty id and repeated ids (after the first) are counted and skipped,
    over-long values cut to ``source.max_text_chars`` (counted)."""
    src: ItemsSource = job.source.items
    issues = _issues(issues)
    df = read_table(job, src, what="items")
    _require(
        df,
        [src.id_column, src.title_column, *src.text_fields, *(f.column for f in src.fact_columns)],
        what="items",
        path=src.path,
    )
    ids = df[src.id_column].str.strip()
    empty = (ids == "").to_numpy(dtype=bool)
    issues.add("items", src.path, "empty_id", _rows(df.index, empty))
    repeated = ids.duplicated(keep="first").to_numpy(dtype=bool) & ~empty
    issues.add("items", src.path, "duplicate_id", _rows(df.index, repeated))
    keep = ~(empty | repeated)
    all_ids = frozenset(ids[keep].tolist())
    df = df[keep].assign(**{src.id_column: ids[keep]})
    if src.limit:
        df = df.head(src.limit)
    text_columns = [str(c) for c in df.columns if c != src.id_column]
    df = _cut_long_text(
        df, text_columns, limit=job.source.max_text_chars, issues=issues, what="items", path=src.path
    )
    items = []
    for row in df.to_dict(orient="records"):
        item_id = str(row[src.id_column])
        title = str(row[src.title_column]).strip() if src.title_column else None
        text = {f: clean_name(str(row[f])) for f in src.text_fields}
        props = {k: v for k, v in row.items() if k != src.id_column and v != ""}
        items.append(Item(item_id=item_id, title=title, text=text, properties=props))
    return Catalog(items=items, df=df, ids=all_ids)


def read_items(job: JobSpec, *, issues: InputIssues | None = None) -> tuple[list[Item], pd.DataFrame]:
    """The items used and their rows (:func:`read_catalog` without the full id set)."""
    catalog = read_catalog(job, issues=issues)
    return catalog.items, catalog.df


def read_users(job: JobSpec, *, issues: InputIssues | None = None) -> list[Item]:
    """Users with text (``source.users``), one record per user; several rows per user are joined.

    Several rows per user are the table's design, so repeated user ids are not a
    problem; rows with an empty id are (counted, skipped), and so are values longer than
    ``source.max_text_chars`` (cut, counted). The joined text is then cut to
    ``source.users.max_text_chars`` as configured (not counted).
    """
    src = job.source.users
    if src is None:
        raise DataError("source.users: not declared; user-side extraction needs a table of user text")
    issues = _issues(issues)
    df = read_table(job, src, what="users")
    _require(df, [src.id_column, *src.text_fields], what="users", path=src.path)
    df = df.assign(_uid=df[src.id_column].str.strip())
    empty = (df["_uid"] == "").to_numpy(dtype=bool)
    issues.add("users", src.path, "empty_id", _rows(df.index, empty))
    df = df[~empty]
    df = _cut_long_text(
        df, list(src.text_fields), limit=job.source.max_text_chars, issues=issues, what="users", path=src.path
    )
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


def _rdf_issues(
    job: JobSpec,
    facts: list[Fact],
    rejects: list[str],
    *,
    what: str,
    path: str,
    catalog: Catalog | None,
    issues: InputIssues,
) -> list[Fact]:
    """RDF facts have no rows: count misfits, unknown items and over-long objects (``first_rows`` empty)."""
    issues.add(what, path, "not_in_ontology", [], count=len(rejects))
    if catalog is not None:
        unknown = sum(1 for f in facts if f.head_kind == "Item" and f.head_id not in catalog.ids)
        issues.add(what, path, "unknown_item", [], count=unknown)
    limit = job.source.max_text_chars
    long = sum(1 for f in facts if len(f.object) > limit)
    if long:
        issues.add(what, path, "text_too_long", [], count=long)
        facts = [
            f.model_copy(update={"object": f.object[:limit]}) if len(f.object) > limit else f for f in facts
        ]
    return facts


def read_fact_file(
    job: JobSpec,
    ontology: Ontology,
    spec: FactFile,
    index: int,
    *,
    catalog: Catalog | None = None,
    issues: InputIssues | None = None,
    heads: Collection[str] | None = None,
) -> tuple[list[Fact], list[str]]:
    """Known facts from a TSV/CSV file or RDF; rows that do not fit the ontology are returned as rejects, not dropped.

    With ``heads``, only the rows about those subjects are checked, counted and returned (a
    refresh that scores its few new items against gold reads the file, not 10^5 facts).

    Counted: rows with an empty item id (``empty_id``) or that do not fit the ontology
    (``not_in_ontology``), both also rejects; with a ``catalog``, facts about items not
    in it (``unknown_item``: still returned, the load stage leaves them out); over-long
    values (cut to ``source.max_text_chars``).
    """
    what = f"facts[{index}]"
    issues = _issues(issues)
    path = resolve_job_path(job, spec.path)
    rdf_format = spec.format if spec.format in RDF_FORMATS else SUFFIX_FORMATS.get(path.suffix.lower())
    if rdf_format is not None and spec.format in (None, rdf_format):
        if not path.is_file():
            raise DataError(
                f"source.{what}.path: file {spec.path!r} not found (resolved to {path}); fix the path"
            )
        prefix = spec.item_prefix or f"{job.graph.rdf_base}item:"
        facts, rejects = read_rdf_facts(
            path, fmt=rdf_format, ontology=ontology, source=spec.name, item_prefix=prefix
        )
        if heads is not None:
            wanted = set(heads)
            facts = [f for f in facts if f.head_id in wanted]
        facts = _rdf_issues(job, facts, rejects, what=what, path=spec.path, catalog=catalog, issues=issues)
        return facts, rejects
    df = read_table(job, spec, what=what)
    cols = [spec.item_column, spec.relation_column, spec.object_column, spec.object_type_column]
    _require(df, cols, what=what, path=spec.path)
    df = pd.DataFrame({c: df[c].str.strip() for c in cols}, index=df.index)
    if heads is not None:
        df = df[df[spec.item_column].isin(set(heads))]
    item, relation, obj_type = df[spec.item_column], df[spec.relation_column], df[spec.object_type_column]
    names = df[spec.object_column].map(clean_name)
    pairs = {f"{r}\t{t}" for r, rel in ontology.relations.items() for t in rel.tail}
    empty = (item == "").to_numpy(dtype=bool)
    fits = ((relation + "\t" + obj_type).isin(pairs) & (names != "")).to_numpy(dtype=bool) & ~empty
    issues.add(what, spec.path, "empty_id", _rows(df.index, empty))
    issues.add(what, spec.path, "not_in_ontology", _rows(df.index, ~fits & ~empty))
    file_name = Path(spec.path).name
    rejects = [
        f"{file_name}:{n + 2}: ({i!r}, {r!r}, {o!r}, {t!r}) does not fit the ontology"
        for n, i, r, o, t in df[~fits].itertuples(index=True, name=None)
    ]
    if catalog is not None:
        unknown = fits & ~item.isin(catalog.ids).to_numpy(dtype=bool)
        issues.add(what, spec.path, "unknown_item", _rows(df.index, unknown))
    kept = df[fits].assign(_name=names[fits])
    kept = _cut_long_text(
        kept, ["_name"], limit=job.source.max_text_chars, issues=issues, what=what, path=spec.path
    )
    facts = [
        Fact(
            head_id=i,
            relation=r,
            object=name,
            object_type=t,
            source=spec.name,
            source_field=file_name,
        )
        for i, r, t, name in kept[
            [spec.item_column, spec.relation_column, spec.object_type_column, "_name"]
        ].itertuples(index=False, name=None)
    ]
    return facts, rejects


def read_interactions(
    job: JobSpec, *, catalog: Catalog | None = None, issues: InputIssues | None = None
) -> pd.DataFrame:
    """Interactions as a DataFrame with ``user_id, item_id, rating, ts`` (rating/ts may be NaN).

    Counted, then skipped: rows with an empty user or item id (``empty_id``), a rating
    that is not a finite number where ``rating_column`` is declared
    (``invalid_rating``), and with a ``catalog`` an item not in the catalog file
    (``unknown_item``; interactions of items left out by ``source.items.limit`` are
    dropped without a count). Counted, then kept with ``ts`` NaN: a timestamp that is
    negative, not a number or NaN where ``timestamp_column`` is declared
    (``invalid_timestamp``).
    """
    src = job.source.interactions
    if src is None:
        raise DataError("source.interactions: not declared; the recommend stage needs user-item interactions")
    issues = _issues(issues)
    df = read_table(job, src, what="interactions")
    _require(
        df,
        [src.user_column, src.item_column, src.rating_column, src.timestamp_column],
        what="interactions",
        path=src.path,
    )
    out = pd.DataFrame(
        {"user_id": df[src.user_column].str.strip(), "item_id": df[src.item_column].str.strip()},
        index=df.index,
    )
    out["rating"] = (
        pd.to_numeric(df[src.rating_column], errors="coerce") if src.rating_column else float("nan")
    )
    out["ts"] = (
        pd.to_numeric(df[src.timestamp_column], errors="coerce") if src.timestamp_column else float("nan")
    )
    what, path = "interactions", src.path
    drop = ((out["user_id"] == "") | (out["item_id"] == "")).to_numpy(dtype=bool)
    issues.add(what, path, "empty_id", _rows(out.index, drop))
    if src.rating_column:
        bad_rating = ~np.isfinite(out["rating"].to_numpy(dtype=float)) & ~drop
        issues.add(what, path, "invalid_rating", _rows(out.index, bad_rating))
        drop = drop | bad_rating
    if catalog is not None:
        item_ids = out["item_id"]
        unknown = ~item_ids.isin(catalog.ids).to_numpy(dtype=bool) & ~drop
        issues.add(what, path, "unknown_item", _rows(out.index, unknown))
        drop = drop | unknown
        used = catalog.used_ids
        if len(used) < len(catalog.ids):  # source.items.limit left some out: drop theirs, uncounted
            drop = drop | ~item_ids.isin(used).to_numpy(dtype=bool)
    out = out[~drop]
    if src.timestamp_column:
        ts = out["ts"].to_numpy(dtype=float)
        bad_ts = ~(np.isfinite(ts) & (ts >= 0))
        issues.add(what, path, "invalid_timestamp", _rows(out.index, bad_ts))
        if bad_ts.any():
            out = out.assign(ts=out["ts"].where(~bad_ts))
    return out
