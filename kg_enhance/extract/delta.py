"""Incremental refresh: what changed since the graph was last loaded, found by content.

Every subject (catalog item, user with text) is recorded with its extraction cache key
(:meth:`~kg_enhance.extract.plan.ExtractionPlan.cache_keys`: the text the prompt sees,
the ontology fingerprint, the template hash, the served model, the endpoint and the
generation settings), so a subject is *changed* exactly when the LLM would be asked
something new about it. Items also get a hash of their node properties (``row``: a
catalog column outside the prompt that changed rewrites the node, nothing more), and
every interaction a hash of its rating and time.

Files under ``delta/`` of the run folder (all written atomically):

``subjects.parquet``, ``interactions.parquet``, ``state.json``
    *committed*: what the graph holds, written by the load stage after its writes.
``next_subjects.parquet``, ``plan.json``
    written by the extract stage: the subjects table once this run's load commits, and
    the plan the load carries out (mode, subjects whose LLM facts are replaced, removed
    subjects, counts).
``last_full.json``
    stage seconds of the last full run, for the report's ``delta.seconds_saved``.

A run always diffs against the *committed* tables, so an extract run twice before a
load, or a load that failed, loses nothing: the next run finds the same changes (their
answers then come from the extraction cache).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kg_enhance.config.models import JobSpec
from kg_enhance.extract.cache import ExtractionCache, default_cache_path
from kg_enhance.extract.client import normalise_endpoint
from kg_enhance.extract.plan import ExtractionPlan
from kg_enhance.io.files import write_json, write_with
from kg_enhance.io.tables import InputIssues, read_catalog, read_interactions, read_users
from kg_enhance.ontology.models import Ontology
from kg_enhance.rundir import RunDir
from kg_enhance.types import Fact, Item

SUBJECT_COLUMNS = ["kind", "id", "key", "row", "answered_at", "facts"]
INTERACTION_COLUMNS = ["user_id", "item_id", "hash"]
#: one row per subject of a fact file: its facts from that file, hashed together
FACT_GROUP_COLUMNS = ["source", "kind", "id", "hash"]
#: subject kinds of the tables, and the fact head kind of each
KINDS = {"item": "Item", "user": "User"}
FORMAT = 1


def item_props(item: Item) -> dict[str, Any]:
    """The properties of an item's node: scalar catalog columns plus the title (the load writes these)."""
    props = {k: v for k, v in item.properties.items() if isinstance(v, (str, int, float, bool))}
    if item.title:
        props["title"] = item.title
    return props


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def row_hashes(items: Iterable[Item]) -> list[str]:
    return [_hash(item_props(i)) for i in items]


def fact_groups(facts: Iterable[Fact], sources: Collection[str]) -> pd.DataFrame:
    """Per subject of each fact file in ``sources`` (``source``, head ``kind``, ``id``), a hash of the
    facts that file states about it (every field the load writes, in a canonical order), so a changed
    file is compared subject by subject and only the subjects whose facts changed are rewritten."""
    rows = [
        (
            f.source,
            f.head_kind,
            f.head_id,
            json.dumps(
                [f.relation, f.object, f.object_type, f.source_field, f.evidence, f.confidence, f.model],
                ensure_ascii=False,
                default=str,
            ),
        )
        for f in facts
        if f.source in sources
    ]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=str) for c in FACT_GROUP_COLUMNS})
    df = pd.DataFrame(rows, columns=["source", "kind", "id", "line"]).sort_values(
        ["source", "kind", "id", "line"], kind="stable"
    )
    joined = df.groupby(["source", "kind", "id"], sort=False)["line"].agg("\n".join)
    return pd.DataFrame(
        {
            "source": joined.index.get_level_values(0).astype(str),
            "kind": joined.index.get_level_values(1).astype(str),
            "id": joined.index.get_level_values(2).astype(str),
            "hash": [hashlib.sha256(text.encode("utf-8")).hexdigest()[:24] for text in joined.to_numpy()],
        }
    )


def changed_fact_subjects(
    before: pd.DataFrame, now: pd.DataFrame, sources: Collection[str]
) -> dict[str, dict[str, list[str]]]:
    """Per fact file in ``sources`` and head kind, the subjects whose facts from it are new, changed or
    gone between two :func:`fact_groups` tables (the facts a load must rewrite or delete)."""
    keys = ["source", "kind", "id"]
    merged = before[before["source"].isin(sources)].merge(
        now[now["source"].isin(sources)], on=keys, how="outer", suffixes=("_before", "_now")
    )
    differ = merged[merged["hash_before"].ne(merged["hash_now"])]  # NaN on either side differs too
    out: dict[str, dict[str, list[str]]] = {}
    for (source, kind), group in differ.groupby(["source", "kind"], sort=True):
        out.setdefault(str(source), {})[str(kind)] = sorted(group["id"].astype(str))
    return out


def settings_hash(job: JobSpec, ontology: Ontology) -> str:
    """What besides the subjects decides the graph a load writes: the ontology, fact columns and files,
    resolution settings and the LLM subject limits. A different value makes the next load a full one."""
    return _hash(
        {
            "format": FORMAT,
            "ontology": ontology.fingerprint(),
            "items": job.source.items.model_dump(mode="json"),
            "facts": [f.model_dump(mode="json") for f in job.source.facts],
            "interactions": None
            if job.source.interactions is None
            else job.source.interactions.model_dump(mode="json"),
            "graph": job.graph.model_dump(mode="json", exclude={"lock_stale_after_s"}),
            "llm_enabled": job.llm.enabled,
            "users": job.llm.users.enabled,
        }
    )


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:24]


# -- tables ---------------------------------------------------------------------------------------
def read_table(path: Path, columns: list[str]) -> pd.DataFrame | None:
    if not path.exists():
        return None
    df = pd.read_parquet(path)
    return df if list(df.columns) == columns else None


def write_table(path: Path, df: pd.DataFrame) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return write_with(path, lambda tmp: df.to_parquet(tmp, index=False))


def read_state(run: RunDir) -> dict[str, Any]:
    try:
        value = json.loads(run.delta_state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def committed(run: RunDir) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The committed subjects table and state, or ``(None, {})`` when no load has committed one."""
    state = read_state(run)
    subjects = read_table(run.delta_subjects, SUBJECT_COLUMNS)
    if subjects is None or state.get("format") != FORMAT:
        return None, {}
    return subjects, state


def subjects_frame(
    kind: str,
    ids: Sequence[str],
    keys: Sequence[str | None],
    rows: Sequence[str | None],
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": pd.Series([kind] * len(ids), dtype=object),
            "id": pd.Series(list(ids), dtype=object),
            "key": pd.Series(list(keys), dtype=object),
            "row": pd.Series(list(rows), dtype=object),
            "answered_at": np.full(len(ids), np.nan),
            "facts": np.zeros(len(ids), dtype=np.int64),
        }
    )


# -- subjects -------------------------------------------------------------------------------------
@dataclass
class SubjectDiff:
    """One kind's subjects against the committed table.

    ``changed``: the cache key differs (new text, prompt, ontology or model), or the subject
    left the LLM's subjects (``llm.item_limit``): its LLM facts are replaced.
    ``row_changed``: the node's properties differ (items); ``removed``: gone from the input.
    """

    kind: str
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    row_changed: list[str] = field(default_factory=list)
    #: of the unchanged LLM subjects: those whose facts are older than llm.refresh_after, oldest first
    stale: list[str] = field(default_factory=list)
    stale_facts: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.new),
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "removed": len(self.removed),
            "stale": len(self.stale),
        }


def diff_subjects(
    previous: pd.DataFrame | None,
    current: pd.DataFrame,
    *,
    kind: str,
    stale_before: float | None = None,
) -> SubjectDiff:
    """Compare ``current`` (one kind, see :func:`subjects_frame`) with the committed table, by id (vectorised)."""
    out = SubjectDiff(kind=kind)
    prev = (
        previous[previous["kind"] == kind] if previous is not None else pd.DataFrame(columns=SUBJECT_COLUMNS)
    )
    merged = current[["id", "key", "row"]].merge(
        prev[["id", "key", "row", "answered_at", "facts"]],
        on="id",
        how="outer",
        suffixes=("", "_prev"),
        indicator=True,
    )
    both = merged[merged["_merge"] == "both"]
    out.new = merged.loc[merged["_merge"] == "left_only", "id"].tolist()
    out.removed = merged.loc[merged["_merge"] == "right_only", "id"].tolist()
    key_now, key_prev = both["key"].fillna(""), both["key_prev"].fillna("")
    differs = key_now != key_prev
    out.changed = both.loc[differs, "id"].tolist()
    out.unchanged = both.loc[~differs, "id"].tolist()
    out.row_changed = both.loc[both["row"].fillna("") != both["row_prev"].fillna(""), "id"].tolist()
    if stale_before is not None:
        old = both[(~differs) & (key_now != "") & (both["answered_at"] < stale_before)]
        old = old.sort_values(["answered_at", "id"], kind="mergesort")
        out.stale = old["id"].tolist()
        out.stale_facts = int(old["facts"].sum())
    return out


# -- interactions ---------------------------------------------------------------------------------
def interaction_table(df: pd.DataFrame) -> pd.DataFrame:
    """``user_id, item_id, hash`` of each (user, item) pair as the graph holds it (the last row wins)."""
    last = df.drop_duplicates(["user_id", "item_id"], keep="last")
    values = pd.util.hash_pandas_object(last[["rating", "ts"]], index=False).to_numpy()
    return pd.DataFrame(
        {
            "user_id": last["user_id"].astype(str).to_numpy(),
            "item_id": last["item_id"].astype(str).to_numpy(),
            "hash": values.view(np.int64),
        }
    )


@dataclass
class InteractionDiff:
    #: rows (``user_id, item_id``) to write: new pairs and pairs whose rating or time changed
    write: pd.DataFrame
    #: pairs (``user_id, item_id``) gone from the input
    removed: pd.DataFrame
    new: int
    changed: int
    unchanged: int

    def counts(self) -> dict[str, int]:
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": len(self.removed),
        }


def diff_interactions(previous: pd.DataFrame | None, current: pd.DataFrame) -> InteractionDiff:
    if previous is None:
        previous = pd.DataFrame({c: pd.Series(dtype=object) for c in INTERACTION_COLUMNS})
    merged = current.merge(
        previous, on=["user_id", "item_id"], how="outer", suffixes=("", "_prev"), indicator=True
    )
    new = merged["_merge"] == "left_only"
    changed = (merged["_merge"] == "both") & (merged["hash"] != merged["hash_prev"])
    removed = merged.loc[merged["_merge"] == "right_only", ["user_id", "item_id"]]
    return InteractionDiff(
        write=merged.loc[new | changed, ["user_id", "item_id"]],
        removed=removed.reset_index(drop=True),
        new=int(new.sum()),
        changed=int(changed.sum()),
        unchanged=int(((merged["_merge"] == "both") & ~changed).sum()),
    )


# -- the plan of one run --------------------------------------------------------------------------
@dataclass
class DeltaPlan:
    """What one run does to the LLM subjects, made by the extract stage (or ``kg-enhance diff``)."""

    mode: str  # "full" or "incremental"
    reason: str
    diffs: dict[str, SubjectDiff]
    #: subjects to send to the engine per kind, in order: new and changed first, then stale ones oldest first
    todo: dict[str, list[str]]
    #: of ``todo``: the stale ones (the cache is bypassed for them)
    refresh: dict[str, list[str]]

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"


def make_plan(
    job: JobSpec,
    previous: pd.DataFrame | None,
    state: dict[str, Any],
    currents: dict[str, pd.DataFrame],
    *,
    ontology: Ontology,
    full: bool,
    now: float | None = None,
) -> DeltaPlan:
    """Diff each kind's subjects against the committed table and choose what to extract."""
    limit = job.llm.refresh_after_s
    stale_before = None if limit is None else (now or time.time()) - limit
    diffs = {
        kind: diff_subjects(previous, frame, kind=kind, stale_before=stale_before)
        for kind, frame in currents.items()
    }
    if full:
        mode, reason = "full", "run --full"
    elif previous is None:
        mode, reason = "full", "no committed delta state (first run, or the state was removed)"
    elif state.get("settings") != settings_hash(job, ontology):
        mode, reason = (
            "full",
            "the ontology, sources, graph or LLM subject settings changed since the last load",
        )
    else:
        mode, reason = "incremental", "subjects compared by content with the last committed load"
    todo: dict[str, list[str]] = {}
    refresh: dict[str, list[str]] = {}
    for kind, d in diffs.items():
        planned = set(currents[kind].loc[currents[kind]["key"].notna(), "id"])
        if mode == "full":
            first = [i for i in currents[kind]["id"] if i in planned]
        else:
            first = [i for i in [*d.new, *d.changed] if i in planned]
        seen = set(first)
        todo[kind] = [*first, *(i for i in d.stale if i not in seen)]
        refresh[kind] = list(d.stale)
    return DeltaPlan(mode=mode, reason=reason, diffs=diffs, todo=todo, refresh=refresh)


def current_subjects(
    job: JobSpec,
    ontology: Ontology,
    plans: dict[str, ExtractionPlan],
    all_subjects: dict[str, list[Item]],
    *,
    mode: str,
    served_model: str,
    endpoint: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Per kind, every subject with its cache key (null when the LLM is not asked about it) and row hash."""
    out: dict[str, pd.DataFrame] = {}
    for kind, subjects in all_subjects.items():
        plan = plans.get(kind)
        keys_by_id: dict[str, str] = {}
        if plan is not None:
            keys = plan.cache_keys(job, ontology, mode=mode, served_model=served_model, endpoint=endpoint)
            keys_by_id = {s.item_id: k for s, k in zip(plan.subjects, keys, strict=True)}
        ids = [s.item_id for s in subjects]
        rows: list[str | None] = list(row_hashes(subjects)) if kind == "item" else [None] * len(ids)
        out[kind] = subjects_frame(kind, ids, [keys_by_id.get(i) for i in ids], rows)
    return out


def write_plan(run: RunDir, plan: dict[str, Any]) -> Path:
    run.folder("delta")
    return write_json(run.delta_plan, plan, indent=None)


def read_plan(run: RunDir) -> dict[str, Any]:
    try:
        value = json.loads(run.delta_plan.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


#: ids listed per kind and change in ``kg-enhance diff`` (the counts are always complete)
LIST_IDS = 50


def predict(job: JobSpec, ontology: Ontology, run: RunDir, *, full: bool = False) -> dict[str, Any]:
    """What ``kg-enhance run`` would do now, without calling the LLM or touching the graph.

    The served model and structured-output mode are those the endpoint reported the last
    time a run used it (remembered in the extraction cache); LLM calls are the subjects to
    ask whose answer is not cached, plus the stale ones (always asked).
    """
    llm = job.llm
    issues = InputIssues.collector(log=False)
    catalog = read_catalog(job, issues=issues)
    subjects: dict[str, list[Item]] = {"item": catalog.items}
    plans: dict[str, ExtractionPlan] = {}
    if llm.enabled:
        plans["item"] = ExtractionPlan.for_items(job, catalog.items)
        if llm.users.enabled:
            subjects["user"] = read_users(job, issues=issues)
            plans["user"] = ExtractionPlan.for_users(job, subjects["user"])
    cache = ExtractionCache(default_cache_path()) if default_cache_path().exists() else None
    try:
        seen = (
            cache.endpoint_record(endpoint=normalise_endpoint(llm.base_url), model=llm.model)
            if cache is not None
            else None
        )
        mode: str = llm.structured_output
        if mode == "auto":
            mode = (seen.mode if seen is not None else None) or "json_schema"
        served = seen.served if seen is not None else llm.model
        currents = current_subjects(job, ontology, plans, subjects, mode=mode, served_model=served)
        previous, state = committed(run)
        if llm.enabled and not run.facts.exists():
            previous = None
        plan = make_plan(job, previous, state, currents, ontology=ontology, full=full)
        calls = prompt_chars = 0
        for kind, extraction in plans.items():
            keys = dict(zip(currents[kind]["id"], currents[kind]["key"], strict=True))
            refresh = set(plan.refresh[kind])
            todo = set(plan.todo[kind])
            asking = [s for s in extraction.subjects if s.item_id in todo]
            cached = (
                cache.get_many([keys[s.item_id] for s in asking if s.item_id not in refresh])
                if cache is not None
                else {}
            )
            asked = [s for s in asking if s.item_id in refresh or keys[s.item_id] not in cached]
            calls += len(asked)
            prompt_chars += ExtractionPlan(
                head=extraction.head,
                subjects=asked,
                template=extraction.template,
                grounding=extraction.grounding,
            ).prompt_chars(ontology)
    finally:
        if cache is not None:
            cache.close()
    interactions: dict[str, int] | None = None
    if job.source.interactions is not None:
        df = read_interactions(job, catalog=catalog, issues=issues)
        ids = {i.item_id for i in catalog.items}
        table = interaction_table(df[df["item_id"].isin(ids)])
        before = read_table(run.delta_interactions, INTERACTION_COLUMNS) if previous is not None else None
        interactions = diff_interactions(before, table).counts()
    completion = calls * llm.max_tokens
    return {
        "job": job.name,
        "mode": plan.mode,
        "reason": plan.reason,
        "subjects": {
            kind: {
                "counts": d.counts(),
                "ids": {
                    name: getattr(d, name)[:LIST_IDS]
                    for name in ("new", "changed", "removed", "stale")
                    if getattr(d, name)
                },
            }
            for kind, d in plan.diffs.items()
        },
        "interactions": interactions,
        "staleness": {
            "refresh_after": llm.refresh_after,
            "facts_older_than_limit": sum(d.stale_facts for d in plan.diffs.values()),
        },
        "llm": {
            "calls": calls,
            "estimated_prompt_tokens": prompt_chars // 4,
            "estimated_completion_tokens_max": completion,
            "estimated_tokens_max": prompt_chars // 4 + completion,
            "budget_tokens": llm.budget_tokens,
            "served_model": served,
        },
        "note": "tokens estimated at 4 characters per token; the served model is the one the endpoint reported "
        "last (a different one now makes every subject changed)",
    }
