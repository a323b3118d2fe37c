"""Bulk first load: the graph a transactional load writes, written offline by ``neo4j-admin database import``.

When. For the first load of a large job into an **empty** database of the
project-managed local Neo4j (``kg-enhance graph bulk-load JOB``). Everything else
(an incremental load, a database other jobs share, any remote server) takes the
transactional load (``kg-enhance run``), which MERGEs into what is there.

Why it is only that. ``neo4j-admin database import full`` builds a database from CSV
files with the server stopped, replacing the target database. Neo4j Community has one
user database (``neo4j``), so the import replaces the whole graph: the caller checks
that it holds no node at all, stops the local server, imports with
``--overwrite-destination``, starts it again and then creates the constraints and
indexes (:meth:`Neo4jStore.ensure_schema`), as a first transactional load would have.

What is written. :func:`write_import_files` lays out, from the rows the load stage
prepares (items, interactions, facts with their resolutions, aliases, quarantine), one
CSV file per node kind and per relationship type with exactly the labels and properties
the ``cypher/write`` statements set on an empty database, including MERGE's
de-duplication (one ``INTERACTED`` edge per user and item, one fact edge per head,
relation, entity and source; the last row wins, as ``SET`` does), ``ON CREATE`` names
(the vocabulary first, then the first name a fact gives) and absent (never null)
unknown provenance. The namespace fingerprint of the result equals the transactional
load's (``tests/integration/test_bulk_load.py``). Files stream to disk row by row.

CSV conventions (checked against Neo4j 5.26's importer): every string is quoted, a
missing value is an empty unquoted field (the property is absent), arrays (labels,
``quarantine_errors``) are joined with U+001F, which no name may contain.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from kg_enhance.errors import GraphStoreError
from kg_enhance.graph.resolve import Resolution
from kg_enhance.graph.store import fact_edge_row, fact_target
from kg_enhance.names import entity_key
from kg_enhance.ontology.models import Ontology
from kg_enhance.services import neo4j as local_neo4j
from kg_enhance.types import Fact, QuarantineRecord

#: the importer's ``--array-delimiter``
ARRAY_DELIMITER = "\x1f"
#: property names that can stand in a CSV header unquoted (``name:type``)
_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: fact edge properties, in header order, with their importer types (what ``write/merge_item_facts`` sets)
_FACT_COLUMNS = (
    ("source", "string"),
    ("source_field", "string"),
    ("model", "string"),
    ("prompt_hash", "string"),
    ("object_name", "string"),
    ("evidence", "string"),
    ("confidence", "double"),
    ("job", "string"),
    ("run_id", "string"),
)


def _kind(value: Any) -> str | None:
    """The importer type of a property value as the driver would send it (None: not a scalar)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    return None


@dataclass
class BulkGraph:
    """What a first load of one job writes: the load stage's inputs after resolution."""

    namespace: str
    entity_namespace: str
    job: str
    run_id: str
    ontology: Ontology
    #: ``{item_id, props}`` rows (``kg_enhance.stages.load.item_rows``); iterated twice
    items: Sequence[dict[str, Any]]
    #: ``user_id, item_id, rating, ts`` (NaN: unknown), or None
    interactions: pd.DataFrame | None
    facts: Sequence[Fact]
    resolutions: Mapping[tuple[str, str], Resolution]
    #: ``kg_enhance.graph.resolve.alias_rows``
    aliases: Sequence[dict[str, Any]]
    quarantine: Sequence[QuarantineRecord] = ()
    seed_vocabulary: bool = True


@dataclass
class ImportFiles:
    """The CSV files of one import and the counts written to them."""

    folder: Path
    nodes: list[Path] = field(default_factory=list)
    relationships: list[Path] = field(default_factory=list)
    multiline: bool = False
    counts: dict[str, int] = field(default_factory=dict)


class _CsvWriter:
    """A minimal CSV writer with the importer's quoting: strings quoted, ``None`` empty and unquoted."""

    def __init__(self, path: Path, header: Sequence[str], files: ImportFiles) -> None:
        self.path = path
        self.files = files
        self.handle: IO[str] = path.open("w", encoding="utf-8", newline="")
        self.handle.write(",".join(header) + "\n")
        self.rows = 0

    def row(self, values: Iterable[Any]) -> None:
        self.handle.write(",".join(self._field(v) for v in values) + "\n")
        self.rows += 1

    def _field(self, value: Any) -> str:
        if type(value).__module__ == "numpy" and hasattr(value, "item"):
            value = value.item()  # how the driver sends NumPy scalars
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise GraphStoreError(
                    f"bulk-load: {self.path.name}: {value!r} cannot be imported; use `kg-enhance run`"
                )
            return repr(float(value))
        if isinstance(value, list):
            return self._field(ARRAY_DELIMITER.join(self._array_item(v) for v in value))
        text = str(value)
        if "\n" in text or "\r" in text:
            self.files.multiline = True
        return '"' + text.replace('"', '""') + '"'

    def _array_item(self, value: Any) -> str:
        text = str(value)
        if ARRAY_DELIMITER in text:
            raise GraphStoreError(
                f"bulk-load: {self.path.name}: a value holds U+001F, the import's array delimiter; use `kg-enhance run`"
            )
        return text

    def close(self) -> None:
        self.handle.close()


def _label(*labels: str) -> str:
    return ARRAY_DELIMITER.join(labels)


def _item_columns(items: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """Property columns of the item file, with importer types, from the rows' values (one type per column)."""
    types: dict[str, set[str]] = {}
    for row in items:
        for key, value in row["props"].items():
            if key == "ns":  # write/merge_items: `props {.*, ns: $ns}`: the namespace wins
                continue
            kind = _kind(value)
            if kind is None:
                continue
            types.setdefault(key, set()).add(kind)
    columns = []
    for key in sorted(types):
        if not _PROPERTY.match(key) or key in ("item_id", "quarantined_run", "quarantine_errors"):
            raise GraphStoreError(
                f"bulk-load: catalog column {key!r} cannot be a property column of the import file; "
                "rename it in the catalog or load with `kg-enhance run`"
            )
        kinds = types[key]
        if len(kinds) > 1:
            raise GraphStoreError(
                f"bulk-load: catalog column {key!r} holds values of several types ({', '.join(sorted(kinds))}); "
                "the import takes one type per column: load with `kg-enhance run`"
            )
        columns.append((key, kinds.pop()))
    return columns


def write_import_files(graph: BulkGraph, folder: Path) -> ImportFiles:
    """Write the import's CSV files into ``folder`` (created; emptied first) and return them."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, mode=0o700)
    files = ImportFiles(folder=folder)
    ontology = graph.ontology
    ns, ens = graph.namespace, graph.entity_namespace

    def writer(name: str, header: Sequence[str], *, relationship: bool) -> _CsvWriter:
        w = _CsvWriter(folder / name, header, files)
        (files.relationships if relationship else files.nodes).append(w.path)
        return w

    # -- items (write/merge_items, write/mark_quarantined)
    item_label = ontology.item.label
    if not _PROPERTY.match(item_label):
        raise GraphStoreError(f"bulk-load: item label {item_label!r} is not a plain name")
    columns = _item_columns(graph.items)
    quarantined = {r.item_id: r.errors[:5] for r in graph.quarantine}
    items = writer(
        "items.csv",
        [
            "item_id:ID(Item)",
            "ns:string",
            *(f"{k}:{t}" for k, t in columns),
            "quarantined_run:string",
            "quarantine_errors:string[]",
            ":LABEL",
        ],
        relationship=False,
    )
    item_ids: set[str] = set()
    for row in graph.items:
        item_id = row["item_id"]
        if item_id in item_ids:  # MERGE: a second row updates the same node; the catalog has none
            raise GraphStoreError(f"bulk-load: item id {item_id!r} twice in the catalog rows")
        item_ids.add(item_id)
        props = row["props"]
        errors = quarantined.get(item_id)
        items.row(
            [
                item_id,
                ns,
                *(props.get(k) for k, _ in columns),
                graph.run_id if errors is not None else None,
                errors,
                _label("Item", item_label),
            ]
        )
    items.close()
    files.counts["items"] = items.rows

    # -- fact edges, de-duplicated like MERGE (head, type, entity, source) with `SET r = props`
    edges: dict[tuple[str, str, str, str, str], tuple[str, dict[str, Any]]] = {}
    entities: dict[str, tuple[str, str, set[str], bool]] = {}  # key -> (name, type, labels, vocabulary)
    if graph.seed_vocabulary:  # write/seed_vocabulary, first: vocabulary names win
        for type_name, ent in sorted(ontology.entity_types.items()):
            for value in ent.vocabulary or ():
                key = entity_key(type_name, value)
                name, type_, labels, _ = entities.get(key, (value, type_name, set(), True))
                labels.add(ontology.check_label(type_name))
                entities[key] = (name, type_, labels, True)
    users: set[str] = set()
    for fact in graph.facts:
        key, name, rel_type = fact_target(fact, ontology, graph.resolutions)
        if key not in entities:  # write/merge_entities: ON CREATE only
            entities[key] = (name, fact.object_type, {fact.object_type}, False)
        if fact.head_kind == "Item" and fact.head_id not in item_ids:
            continue  # MATCH (h:Item ...) finds nothing
        if fact.head_kind == "User":
            users.add(fact.head_id)
        row = fact_edge_row(fact, key)
        edges[(fact.head_kind, fact.head_id, rel_type, key, fact.source)] = (fact.head_id, row["props"])

    # -- users (write/merge_users, write/merge_user_facts)
    interactions = graph.interactions
    if interactions is not None:
        interactions = interactions[interactions["item_id"].isin(item_ids)]
        users.update(interactions["user_id"].drop_duplicates().tolist())
    user_file = writer("users.csv", ["user_id:ID(User)", "ns:string", ":LABEL"], relationship=False)
    for user_id in sorted(users):
        user_file.row([user_id, ns, "User"])
    user_file.close()
    files.counts["users"] = user_file.rows

    # -- entities
    entity_file = writer(
        "entities.csv",
        [
            "key:ID(Entity)",
            "ns:string",
            "name:string",
            "type:string",
            "first_run:string",
            "vocabulary:boolean",
            ":LABEL",
        ],
        relationship=False,
    )
    for key, (name, type_, labels, vocabulary) in entities.items():
        entity_file.row(
            [
                key,
                ens,
                name,
                type_,
                graph.run_id,
                True if vocabulary else None,
                _label("Entity", *sorted(labels)),
            ]
        )
    entity_file.close()
    files.counts["entities"] = entity_file.rows

    # -- aliases (resolve/write_aliases: only where the canonical entity exists)
    alias_rows = [a for a in graph.aliases if a["canonical_key"] in entities]
    if alias_rows:
        alias_file = writer(
            "aliases.csv",
            ["key:ID(Alias)", "ns:string", "name:string", "type:string", "first_run:string", ":LABEL"],
            relationship=False,
        )
        alias_of = writer(
            "alias_of.csv",
            [
                ":START_ID(Alias)",
                ":END_ID(Entity)",
                "reason:string",
                "score:double",
                "matched_name:string",
                "run_id:string",
                ":TYPE",
            ],
            relationship=True,
        )
        seen: dict[str, dict[str, Any]] = {}
        for a in alias_rows:  # MERGE on the key: the last row's properties win
            seen[a["key"]] = a
        for a in seen.values():
            alias_file.row([a["key"], ens, a["name"], a["type"], graph.run_id, "Alias"])
            alias_of.row(
                [
                    a["key"],
                    a["canonical_key"],
                    a["reason"],
                    a["score"],
                    a["matched_name"],
                    graph.run_id,
                    "ALIAS_OF",
                ]
            )
        alias_file.close()
        alias_of.close()
        files.counts["aliases"] = alias_file.rows

    # -- fact edges, one file per head kind (all relationship types in it, by :TYPE)
    for head_kind in ("Item", "User"):
        rows = [(k, v) for k, v in edges.items() if k[0] == head_kind]
        if not rows:
            continue
        fact_file = writer(
            f"facts_{head_kind.lower()}.csv",
            [
                f":START_ID({head_kind})",
                ":END_ID(Entity)",
                *(f"{name}:{kind}" for name, kind in _FACT_COLUMNS),
                ":TYPE",
            ],
            relationship=True,
        )
        for (_, head_id, rel_type, key, _), (_, props) in rows:
            values = {**props, "job": graph.job, "run_id": graph.run_id}
            fact_file.row([head_id, key, *(values.get(name) for name, _ in _FACT_COLUMNS), rel_type])
        fact_file.close()
        files.counts[f"{head_kind.lower()}_facts"] = fact_file.rows

    # -- interactions (write/merge_interactions: one edge per user and item, the last row's rating and ts)
    if interactions is not None and len(interactions):
        last = interactions.drop_duplicates(["user_id", "item_id"], keep="last")
        inter = writer(
            "interactions.csv",
            [":START_ID(User)", ":END_ID(Item)", "rating:double", "ts:long", ":TYPE"],
            relationship=True,
        )
        for cells in _interaction_values(last):
            inter.row([*cells, "INTERACTED"])
        inter.close()
        files.counts["interactions"] = inter.rows
    return files


def _optional(value: Any, cast: type[float] | type[int]) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return cast(value)


def _interaction_values(df: pd.DataFrame, chunk: int = 50_000) -> Iterator[tuple[Any, Any, Any, Any]]:
    for start in range(0, len(df), chunk):
        part = df.iloc[start : start + chunk]
        for u, i, r, t in zip(
            part["user_id"].tolist(),
            part["item_id"].tolist(),
            part["rating"].tolist(),
            part["ts"].tolist(),
            strict=True,
        ):
            yield u, i, _optional(r, float), _optional(t, int)


def import_command(files: ImportFiles, *, database: str = "neo4j") -> list[str]:
    """The arguments of ``neo4j-admin`` for ``files`` (after the launcher class)."""
    args = [
        "database",
        "import",
        "full",
        database,
        "--overwrite-destination=true",
        f"--array-delimiter=U+{ord(ARRAY_DELIMITER):04X}",
        f"--report-file={files.folder / 'import.report'}",
        *(f"--nodes={p}" for p in files.nodes),
        *(f"--relationships={p}" for p in files.relationships),
    ]
    if files.multiline:
        args.append("--multiline-fields=true")
    return args


def run_import(files: ImportFiles, *, database: str = "neo4j", timeout: float = 6 * 3600) -> str:
    """Run the import with the local server's own ``neo4j-admin`` (the server must be stopped); its output."""
    proc = local_neo4j._run_tool(
        "org.neo4j.server.startup.Neo4jAdminCommand",
        import_command(files, database=database),
        timeout=timeout,
    )
    output = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
        detail = " | ".join(lines[-3:])[:400]
        raise GraphStoreError(
            f"bulk-load: neo4j-admin database import failed (exit {proc.returncode}: {detail}); "
            f"the CSV files are kept in {files.folder}"
        )
    return output


def import_empty(folder: Path, *, database: str = "neo4j") -> None:
    """Import an empty graph (after a failed import left the database unusable)."""
    files = ImportFiles(folder=folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    empty = folder / "empty_nodes.csv"
    empty.write_text("id:ID\n", encoding="utf-8")
    files.nodes.append(empty)
    run_import(files, database=database, timeout=600)
