"""What the report reads: ``report.json``, the run folder's files, and the job's facts.

:class:`RunView` answers "did this stage run in this run?" (status ``ok`` with this run's
id) and hands out a section only then, so the page never shows an earlier run's
figures as this run's. It reads quarantine and drop records from ``extract/``, item
vectors from this run's embedding artifact, and which entities each item has: from a
:class:`~kg_enhance.graph.store.GraphStore` when one is given, else from the job's own
files (catalog fact columns, fact files) and the run's LLM facts, so no Neo4j is needed.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import KgEnhanceError
from kg_enhance.graph.store import GraphStore
from kg_enhance.io.files import read_jsonl
from kg_enhance.io.tables import InputIssues, catalog_facts, read_catalog, read_fact_file
from kg_enhance.kge.artifacts import Embeddings, load_embeddings_dir
from kg_enhance.names import ENTITY, ITEM, anchor_of, entity_key
from kg_enhance.ontology.models import Ontology
from kg_enhance.rundir import RunDir
from kg_enhance.types import Fact

#: report section -> the stage that writes it (``STAGE_REGISTRY``'s ``section``s, spelt out so that
#: writing a report does not import the trainers; a test keeps the two equal)
STAGE_OF_SECTION = {
    "extract": "extract",
    "graph": "load",
    "text_embeddings": "embed_text",
    "kge": "embed",
    "recommend": "recommend",
    "export": "export",
}


@dataclass
class ItemFacts:
    """Which entities each item has, per relation, with entity names and item titles."""

    #: relation -> item id -> entity keys
    by_relation: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    #: entity key -> display name
    names: dict[str, str] = field(default_factory=dict)
    #: where the facts came from (for the caption)
    origin: str = ""

    def counts(self) -> dict[str, int]:
        """Distinct (item, entity) facts per relation."""
        return {r: sum(len(v) for v in items.values()) for r, items in self.by_relation.items()}


@dataclass
class RunView:
    """One run as the report sees it."""

    run: RunDir
    report: dict[str, Any]
    job: JobSpec | None = None
    ontology: Ontology | None = None
    store: GraphStore | None = None

    @property
    def run_id(self) -> str | None:
        value = self.report.get("run_id")
        return str(value) if value is not None else None

    def status(self, stage: str) -> dict[str, Any]:
        value = (self.report.get("stages") or {}).get(stage) or {}
        return value if isinstance(value, dict) else {}

    def ran(self, stage: str) -> bool:
        """Whether ``stage`` completed in this run (status ``ok`` with this run's id)."""
        st = self.status(stage)
        return st.get("status") == "ok" and st.get("run_id") == self.run_id

    def section(self, name: str) -> dict[str, Any] | None:
        """``report[name]`` when its stage ran in this run, else ``None``."""
        stage = STAGE_OF_SECTION.get(name, name)
        value = self.report.get(name)
        if not self.ran(stage) or not isinstance(value, dict):
            return None
        return value

    def absence(self, stage: str) -> str:
        """Why a stage's figures are not shown: "not run in this run" and what is known."""
        st = self.status(stage)
        status = st.get("status")
        if status == "failed":
            return f"{stage}: failed in this run: {st.get('error') or 'no error recorded'}"
        if status in ("pending", "running", "interrupted"):
            return f"{stage}: did not finish in this run ({status})"
        if status == "skipped" and st.get("reason"):
            return f"{stage}: skipped in this run: {st['reason']}"
        last = st.get("last_ok_run_id")
        return f"{stage}: not run in this run" + (f" (last successful run: {last})" if last else "")

    # -- extract ----------------------------------------------------------------------------
    def quarantine(self) -> list[dict[str, Any]]:
        path = self.run.quarantine
        return read_jsonl(path) if path.is_file() else []

    def dropped(self) -> dict[str, list[str]]:
        path = self.run.dropped
        if not path.is_file():
            return {}
        value = json.loads(path.read_text(encoding="utf-8"))
        return value if isinstance(value, dict) else {}

    # -- embeddings ---------------------------------------------------------------------------
    def embeddings(self) -> Embeddings | None:
        """This run's embedding artifact (version = run id), or ``None``."""
        if not self.ran("embed") or self.run_id is None:
            return None
        try:
            return load_embeddings_dir(self.run.root, version=self.run_id)
        except KgEnhanceError:
            return None

    def item_titles(self) -> dict[str, str]:
        if self.job is None:
            return {}
        try:
            catalog = read_catalog(self.job, issues=InputIssues.collector(log=False))
        except KgEnhanceError:
            return {}
        return {i.item_id: i.title for i in catalog.items if i.title}

    # -- facts --------------------------------------------------------------------------------
    def item_facts(self) -> ItemFacts:
        """Item -> entities per relation: from the store when given, else from the job's files and LLM facts."""
        out = ItemFacts()
        if self.store is not None:
            for head, relation, tail in self.store.item_fact_triples():
                item, key = anchor_of(head, ITEM), anchor_of(tail, ENTITY)
                if item is not None and key is not None:
                    out.by_relation.setdefault(relation, {}).setdefault(item, set()).add(key)
            out.names = {str(r["key"]): str(r["name"]) for r in self.store.entity_keys() if r.get("name")}
            out.origin = "the graph store"
            return out
        facts = self._file_facts()
        for f in facts:
            if f.head_kind != "Item":
                continue
            key = entity_key(f.object_type, f.object)
            out.by_relation.setdefault(f.relation, {}).setdefault(f.head_id, set()).add(key)
            out.names.setdefault(key, f.object)  # catalog and fact files come first: trusted names
        out.origin = "the job's catalog and fact files" + (
            " and this run's LLM facts" if any(f.source == "llm" for f in facts) else ""
        )
        return out

    def _file_facts(self) -> list[Fact]:
        job, ontology = self.job, self.ontology
        if job is None or ontology is None:
            return []
        quiet = InputIssues.collector(log=False)
        try:
            catalog = read_catalog(job, issues=quiet)
            facts = catalog_facts(job, ontology, catalog.df)
            for n, spec in enumerate(job.source.facts):
                facts.extend(read_fact_file(job, ontology, spec, n, catalog=catalog, issues=quiet)[0])
        except KgEnhanceError:
            return []
        if job.llm.enabled and self.run.facts.is_file():
            facts.extend(Fact(**row) for row in read_jsonl(self.run.facts))
        return facts


def pca_2d(matrix: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """The first two principal components (scikit-learn's PCA when installed, else numpy's SVD),
    with their shares of the variance."""
    x = np.asarray(matrix, dtype=np.float64)
    if x.shape[0] < 3 or x.shape[1] < 2:
        return np.zeros((x.shape[0], 2)), [0.0, 0.0]
    try:
        from sklearn.decomposition import PCA
    except ImportError:
        centred = x - x.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        var = s**2
        share = (var / var.sum()).tolist() if var.sum() > 0 else [0.0] * len(var)
        return centred @ vt[:2].T, [float(v) for v in share[:2]]
    pca = PCA(n_components=2, random_state=0)
    xy = pca.fit_transform(x)
    return np.asarray(xy), [float(v) for v in pca.explained_variance_ratio_]


def colour_groups(
    item_ids: list[str], facts: ItemFacts, relation: str, *, top: int = 9
) -> tuple[list[str], list[str], str]:
    """Each item's group for the projection: of its entities under ``relation``, the one most items
    share (ties by name); the ``top`` largest groups keep their names, the rest are "other".

    Returns the group per item, the named groups (largest first) and the label of items
    without a fact of ``relation``.
    """
    none_label = f"no {relation} fact"
    per_item = facts.by_relation.get(relation, {})
    popularity: Counter[str] = Counter(k for keys in per_item.values() for k in keys)

    def name(key: str) -> str:
        return facts.names.get(key) or key.partition(":")[2]

    groups = []
    for item_id in item_ids:
        keys = per_item.get(item_id)
        if not keys:
            groups.append(none_label)
            continue
        best = min(keys, key=lambda k: (-popularity[k], name(k)))
        groups.append(name(best))
    sizes = Counter(g for g in groups if g != none_label)
    named = [g for g, _ in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    return groups, named, none_label


_NUMBER = re.compile(r"\b\d+(\.\d+)?\b")


#: a drop note: ``<RELATION> <repr of the name>: <reason>``
_DROP_NOTE = re.compile(r"^(?P<fact>\S+ (?P<q>['\"]).*?(?P=q)): (?P<reason>.+)$")


def split_drop_note(note: str) -> tuple[str, str]:
    """``"DIRECTED_BY 'Heat': the item itself (self-loop)"`` -> ``("DIRECTED_BY 'Heat'", "the item itself (self-loop)")``;
    numbers in a confidence reason become N so that one reason groups."""
    m = _DROP_NOTE.match(note)
    if m:
        fact, reason = m["fact"], m["reason"]
    else:
        fact, _, reason = note.rpartition(": ") if ": " in note else (note, "", "")
    return fact, _NUMBER.sub("N", reason, count=1) if reason.startswith("confidence") else reason


def reason_of_error(error: str) -> str:
    """A validation error without positions: ``facts.3.object: ...`` -> ``facts.N.object: ...``."""
    text = re.sub(r"\.\d+\.", ".N.", error)
    text = re.sub(r"(line|column|char) \d+", r"\1 N", text)
    return text[:160]


def drop_reasons(dropped: dict[str, list[str]], *, examples: int = 3) -> list[dict[str, Any]]:
    """Dropped (and kept-with-a-note) facts grouped by reason, most frequent first, with examples."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for subject, notes in dropped.items():
        for note in notes:
            fact, reason = split_drop_note(note)
            grouped[reason or "(no reason given)"].append(f"{subject}: {fact}")
    return [
        {
            "reason": reason,
            "facts": len(found),
            "kept": reason.endswith("(fact kept)"),
            "examples": found[:examples],
        }
        for reason, found in sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]


def quarantine_reasons(records: list[dict[str, Any]], *, examples: int = 3) -> list[dict[str, Any]]:
    """Quarantined subjects grouped by their first error, with examples (id and raw answer's start)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        errors = rec.get("errors") or ["(no error recorded)"]
        grouped[reason_of_error(str(errors[0]))].append(rec)
    rows = []
    for reason, recs in sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        rows.append(
            {
                "first error": reason,
                "subjects": len(recs),
                "examples": [
                    f"{r.get('kind', 'item')} {r.get('item_id')} ({r.get('attempts')} attempts): "
                    + " ".join(str(r.get("raw_output") or "(no output)").split())[:120]
                    for r in recs[:examples]
                ],
            }
        )
    return rows
