"""Checks of a job against its data files and ontology, for ``kg-enhance validate`` (and before a run).

The files a job declares are opened, but only their header is read (the first line of
CSV/TSV and JSON lines, the schema of parquet; RDF files are only checked to exist), so
the checks cost the same for a thousand rows as for a billion. Each problem is one
``source.<what>.<key>: message; fix`` line, and every problem is listed, not the first:
a missing file, an unknown format or encoding, a declared column that the file lacks (with
the closest column name), a relation or entity type that the ontology does not declare
(with the closest name), and source names that match no source.

Problems *inside* the rows (duplicate ids, bad ratings, ...) are the readers' business
(:mod:`kg_enhance.io.tables`), counted at run time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from kg_enhance.config.job import resolve_path
from kg_enhance.config.loader import suggest
from kg_enhance.config.models import JobSpec, SourceConfig, TableSource
from kg_enhance.io.rdf import RDF_FORMATS
from kg_enhance.io.rdf import SUFFIX_FORMATS as RDF_SUFFIXES
from kg_enhance.io.tables import _SUFFIX_FORMATS
from kg_enhance.ontology.models import Ontology

#: the sources every job has besides its fact files
BUILTIN_SOURCES = ("llm", "catalog")


def header_columns(path: Path, fmt: str, encoding: str) -> list[str]:
    """The column names of a table file, reading only its header; raises ValueError/OSError/UnicodeError."""
    if fmt in ("csv", "tsv"):
        df = pd.read_csv(
            path,
            sep="," if fmt == "csv" else "\t",
            nrows=0,
            encoding=encoding,
            quoting=0 if fmt == "csv" else 3,
        )
        return [str(c) for c in df.columns]
    if fmt == "jsonl":
        with path.open(encoding=encoding) as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError("the first line is not a JSON object")
                    return [str(k) for k in row]
        return []
    import pyarrow.parquet as pq

    return [str(n) for n in pq.read_schema(path).names]


def _missing_file(key: str, declared: str, path: Path) -> str:
    names = sorted(p.name for p in path.parent.iterdir() if p.is_file()) if path.parent.is_dir() else []
    hint = suggest(path.name, names)
    return f"{key}: file {declared!r} not found (resolved to {path}); fix the path{hint}"


def _table_problems(
    what: str, source: TableSource, base_dir: Path, columns: dict[str, Sequence[str | None]]
) -> list[str]:
    """``source.<what>``: the file opens as declared and has every column of ``columns`` (key -> names)."""
    key = f"source.{what}"
    path = resolve_path(source.path, base_dir)
    if not path.is_file():
        return [_missing_file(f"{key}.path", source.path, path)]
    fmt = source.format or _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        return [
            f"{key}.format: cannot tell the format of {path.name}; set {key}.format (csv, tsv, jsonl, parquet)"
        ]
    try:
        found = header_columns(path, fmt, source.encoding)
    except LookupError:
        return [
            f"{key}.encoding: {source.encoding!r} is not a known encoding; use e.g. utf-8, latin-1, cp1252"
        ]
    except UnicodeDecodeError:
        return [
            f"{key}.encoding: the header of {source.path} is not valid {source.encoding}; "
            f"set {key}.encoding to the file's real encoding (e.g. latin-1 or cp1252)"
        ]
    except pd.errors.EmptyDataError:
        return [f"{key}.path: {source.path} is empty; a table needs a header row"]
    except (ValueError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return [f"{key}: cannot read {path.name} as {fmt}: {first[:160]}; check the file and {key}.format"]
    problems = []
    for field, names in columns.items():
        for name in names:
            if name and name not in found:
                problems.append(
                    f"{key}.{field}: column {name!r} is not in {path.name}"
                    + suggest(name, found)
                    + f" (columns: {', '.join(found[:20])}{', ...' if len(found) > 20 else ''})"
                )
    return problems


def source_problems(source: SourceConfig, base_dir: Path, ontology: Ontology | None) -> list[str]:
    """Every problem of the job's data files (header only) and of their ontology references."""
    items = source.items
    problems = _table_problems(
        "items",
        items,
        base_dir,
        {
            "id_column": [items.id_column],
            "title_column": [items.title_column],
            "text_fields": items.text_fields,
            **{f"fact_columns[{i}].column": [f.column] for i, f in enumerate(items.fact_columns)},
        },
    )
    if ontology is not None:
        for i, spec in enumerate(items.fact_columns):
            where = f"source.items.fact_columns[{i}]"
            rel = ontology.relations.get(spec.relation)
            if rel is None:
                problems.append(
                    f"{where}.relation: {spec.relation!r} is not a relation of ontology {ontology.name!r}"
                    + suggest(spec.relation, ontology.relations, listed="relations")
                )
            elif spec.object_type not in rel.tail:
                problems.append(
                    f"{where}.object_type: {spec.object_type!r} is not a tail type of {spec.relation}"
                    + suggest(spec.object_type, rel.tail, listed="allowed")
                )
    if source.users is not None:
        users = source.users
        problems += _table_problems(
            "users", users, base_dir, {"id_column": [users.id_column], "text_fields": users.text_fields}
        )
    if source.interactions is not None:
        inter = source.interactions
        problems += _table_problems(
            "interactions",
            inter,
            base_dir,
            {
                "user_column": [inter.user_column],
                "item_column": [inter.item_column],
                "rating_column": [inter.rating_column],
                "timestamp_column": [inter.timestamp_column],
            },
        )
    for i, fact_file in enumerate(source.facts):
        path = resolve_path(fact_file.path, base_dir)
        rdf = fact_file.format if fact_file.format in RDF_FORMATS else RDF_SUFFIXES.get(path.suffix.lower())
        if rdf is not None and fact_file.format in (None, rdf):
            if not path.is_file():
                problems.append(_missing_file(f"source.facts[{i}].path", fact_file.path, path))
            continue
        problems += _table_problems(
            f"facts[{i}]",
            fact_file,
            base_dir,
            {
                "item_column": [fact_file.item_column],
                "relation_column": [fact_file.relation_column],
                "object_column": [fact_file.object_column],
                "object_type_column": [fact_file.object_type_column],
            },
        )
    return problems


def job_problems(job: JobSpec, ontology: Ontology) -> list[str]:
    """What the job asks of its ontology and its sources that they do not have."""
    problems = []
    if job.llm.enabled and job.llm.users.enabled and not ontology.user_relations():
        problems.append(
            f"llm.users.enabled: ontology {ontology.name!r} declares no relation with head User; "
            "add one (e.g. PREFERS with head: User) or turn llm.users off"
        )
    if job.llm.enabled and not ontology.item_relations():
        problems.append(
            f"llm.enabled: ontology {ontology.name!r} declares no relation with head Item, so there is nothing "
            "to extract; add one or set llm.enabled: false"
        )
    known = [*BUILTIN_SOURCES, *(f.name for f in job.source.facts)]
    named = {
        "graph.compare_sources": job.graph.compare_sources,
        "kge.sources": job.kge.sources,
        "recommender.ablation.gold_sources": job.recommender.ablation.gold_sources,
        "recommender.ablation.llm_sources": job.recommender.ablation.llm_sources,
    }
    for key, sources in named.items():
        for name in sources or []:
            if name not in known:
                problems.append(
                    f"{key}: {name!r} is not a source of this job" + suggest(name, known, listed="sources")
                )
    return problems
