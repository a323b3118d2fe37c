"""The public Python API. Keyword-only arguments throughout.

Every function that works on a job takes a :class:`~kg_enhance.config.models.JobSpec`
or the path of a job file (``job``); ``overrides`` (``--set`` style) apply to paths only.
The CLI is a thin layer over these functions.

PyKEEN (about 5 s to import here) and the modules that train with it (the pipeline,
its stages, the ablation) are imported inside the functions that run them, so
``import kg_enhance`` and quick CLI commands stay quick; everything else is imported
at the top.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import pandas as pd
import torch
from pydantic import ValidationError

from kg_enhance.config.job import find_ontology, job_from_document, load_job, read_job_document
from kg_enhance.config.models import JobSpec, Neo4jConfig, SourceConfig
from kg_enhance.datasets import movielens
from kg_enhance.errors import ConfigError, GraphStoreError, ServiceUnavailableError, StageError
from kg_enhance.extract.cache import ExtractionCache, default_cache_path
from kg_enhance.extract.plan import ExtractionPlan
from kg_enhance.graph import bulk
from kg_enhance.graph.fingerprint import graph_fingerprint as _fingerprint
from kg_enhance.graph.resolve import alias_rows, explain
from kg_enhance.graph.store import GraphStore, Neo4jStore
from kg_enhance.io.check import job_problems, source_problems
from kg_enhance.io.files import read_jsonl, write_json, write_npy, write_with
from kg_enhance.io.rdf import export_rdf as _write_rdf
from kg_enhance.io.tables import read_items, read_users
from kg_enhance.kge.artifacts import Embeddings, load_embeddings_dir, load_text_embeddings
from kg_enhance.kge.registry import check_model_name
from kg_enhance.ontology.models import Ontology, load_ontology
from kg_enhance.paths import resource_dir, state_dir
from kg_enhance.rec.models import check_model_type
from kg_enhance.rec.recbole_export import export_recbole as write_recbole
from kg_enhance.rec.serve import Recommendation, recommender_for
from kg_enhance.rundir import RunDir, new_run_id
from kg_enhance.services import neo4j as local_neo4j
from kg_enhance.types import QuarantineRecord

if TYPE_CHECKING:  # the pipeline pulls in PyKEEN; see the module docstring
    from kg_enhance.pipeline import RunResult

JobLike = JobSpec | str | Path


@dataclass(frozen=True)
class LoadedJob:
    """A validated job with its ontology, loaded once."""

    job: JobSpec
    ontology: Ontology


def _registry_problems(job: JobSpec) -> list[str]:
    """Names that must exist in a registry (checked here, so config/ never imports the trainers)."""
    problems = []
    try:
        job.kge.model = check_model_name(job.kge.model)
    except ValueError as e:
        problems.append(f"kge.model: {e}")
    for n, spec in enumerate(job.recommender.models):
        try:
            check_model_type(spec.type)
        except ValueError as e:
            problems.append(f"recommender.models.{n}.type: {e}")
    for key in ("model", "baseline"):
        try:
            check_model_type(getattr(job.recommender.ablation, key))
        except ValueError as e:
            problems.append(f"recommender.ablation.{key}: {e}")
    return problems


#: pseudo file systems a run folder may never be put in
_SYSTEM_DIRS = (Path("/proc"), Path("/sys"), Path("/dev"))


def _output_problems(job: JobSpec) -> list[str]:
    """``outputs.dir`` must be a folder this process can create and write, outside system folders."""
    root = RunDir.for_job(job).root
    if any(root == d or d in root.parents for d in _SYSTEM_DIRS):
        return [
            f"outputs.dir: {root} is inside a system folder; point it at a folder of your own (e.g. runs/${{name}})"
        ]
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return [
            f"outputs.dir: {root} cannot be created ({existing} is not a writable folder); choose another outputs.dir"
        ]
    return []


def load(job: JobLike, *, overrides: list[str] | None = None, check_data: bool = False) -> LoadedJob:
    """Read and validate a job (file or spec), check registry names and load its ontology once.

    Every problem is collected before anything is raised: the job's keys, the ontology,
    registry names, the outputs folder, what the job asks of its ontology and sources, and
    with ``check_data`` its data files (opened, header only: :mod:`kg_enhance.io.check`).
    A job with invalid keys still has its ontology and (when its ``source`` section is
    valid) its data files checked. Raises one :class:`ConfigError` with a line per problem.
    """
    problems: list[str] = []
    spec: JobSpec | None = None
    if isinstance(job, JobSpec):
        if overrides:
            raise ConfigError("overrides apply to job files; change the JobSpec fields instead")
        spec, where, doc, base_dir = job, f"job {job.name!r}", None, job.base_dir
    else:
        where, base_dir = str(job), Path(job).resolve().parent
        doc = read_job_document(job, overrides=overrides)
        try:
            spec = job_from_document(doc, job)
        except ConfigError as e:
            problems += str(e).splitlines()
    ontology_name = spec.ontology if spec is not None else (doc or {}).get("ontology")
    ontology: Ontology | None = None
    if isinstance(ontology_name, str):
        try:
            ontology_file = find_ontology(ontology_name, base_dir)
        except ConfigError as e:
            problems.append(f"{where}: {e}")
        else:
            try:
                ontology = load_ontology(ontology_file)
            except ConfigError as e:  # its lines name the ontology file
                problems += str(e).splitlines()
    own: list[str] = []
    source: SourceConfig | None = spec.source if spec is not None else None
    if spec is not None:
        own += _registry_problems(spec) + _output_problems(spec)
        if ontology is not None:
            own += job_problems(spec, ontology)
    elif isinstance((doc or {}).get("source"), dict):
        try:  # the job has other problems; its data files can still be checked
            source = SourceConfig.model_validate((doc or {})["source"])
        except ValidationError:
            source = None  # its problems are listed already
    if check_data and source is not None:
        own += source_problems(source, base_dir, ontology)
    problems += [f"{where}: {p}" for p in own]
    if problems:
        raise ConfigError("\n".join(problems))
    assert spec is not None and ontology is not None
    return LoadedJob(job=spec, ontology=ontology)


def validate_job(job: JobLike, *, overrides: list[str] | None = None) -> JobSpec:
    """Load and validate a job and the ontology it names; raises :class:`ConfigError`."""
    return load(job, overrides=overrides, check_data=True).job


def run_job(
    job: JobLike,
    *,
    until: str | None = None,
    only: list[str] | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    store_factory: Callable[[], GraphStore] | None = None,
    strict: bool = False,
    retry_quarantined: bool = False,
    import_batch: str | Path | None = None,
    full: bool = False,
) -> RunResult:
    """Run a job's stages; the report is also written to ``<outputs.dir>/report.json``.

    ``store_factory`` replaces the job's Neo4j (e.g. with an in-memory store in tests).
    Input problems (duplicate ids, unknown items, bad ratings or timestamps, over-long
    text) are counted in the report's ``input_issues``; with ``strict`` the first one
    raises a :class:`~kg_enhance.errors.DataError` instead. The extraction cache remembers
    quarantined subjects and later runs do not ask about them again; ``retry_quarantined``
    asks again. ``import_batch``: the extract stage takes its answers from this Batch API
    output file (e.g. of ``vllm run-batch`` over :func:`export_batch`'s requests). Runs are incremental (only new, changed, removed and stale subjects and
    interactions are worked on; embeddings and recommenders warm-start); ``full`` does
    everything from scratch.
    """
    from kg_enhance.pipeline import plan_stages, run_pipeline

    loaded = load(job, overrides=overrides, check_data=True)
    stages, skipped = plan_stages(until=until, only=only, job=loaded.job)
    return run_pipeline(
        loaded.job,
        loaded.ontology,
        stages=stages,
        progress=progress,
        echo=echo,
        store_factory=store_factory,
        strict=strict,
        retry_quarantined=retry_quarantined,
        import_batch=None if import_batch is None else Path(import_batch).expanduser().resolve(),
        skipped=skipped,
        full=full,
    )


def export_batch(job: JobLike, path: str | Path, *, overrides: list[str] | None = None) -> dict[str, Any]:
    """Write the extract stage's requests as OpenAI Batch API JSONL to ``path`` (for ``vllm run-batch`` or any runner).

    One line per subject that is neither cached nor remembered as quarantined, each
    with the exact request the synchronous path would send; import the runner's output
    with ``run_job(..., only=["extract"], import_batch=...)``. Returns the counts.
    """
    from kg_enhance.stages.extract import export_batch as write_requests

    loaded = load(job, overrides=overrides)
    out = Path(path).expanduser().resolve()
    counts = write_requests(loaded.job, loaded.ontology, out)
    return {"job": loaded.job.name, "file": str(out), **counts}


def dry_run(job: JobLike, *, overrides: list[str] | None = None) -> dict[str, Any]:
    """What a run would do, without calling the LLM or touching Neo4j: items, cache hits, estimated tokens."""
    loaded = load(job, overrides=overrides, check_data=True)
    spec, ontology, llm = loaded.job, loaded.ontology, loaded.job.llm
    items, _ = read_items(spec)
    plans = [ExtractionPlan.for_items(spec, items)]
    if llm.enabled and llm.users.enabled:
        plans.append(ExtractionPlan.for_users(spec, read_users(spec)))
    subjects = sum(len(p.subjects) for p in plans)
    prompt_chars = sum(p.prompt_chars(ontology) for p in plans)
    hits = 0
    if default_cache_path().exists() and llm.structured_output != "auto":
        cache = ExtractionCache(default_cache_path())
        try:
            hits = plans[0].cached(spec, ontology, cache, mode=llm.structured_output)
        finally:
            cache.close()
    users = len(plans[1].subjects) if len(plans) > 1 else 0
    calls = subjects - hits if llm.enabled else 0
    est_prompt = int(prompt_chars / 4 * (calls / max(1, subjects)))
    est_completion = calls * llm.max_tokens
    cost = (
        est_prompt / 1e6 * llm.price_per_1m_input_tokens
        + est_completion / 1e6 * llm.price_per_1m_output_tokens
    )
    return {
        "job": spec.name,
        "catalog_items": len(items),
        "llm_items": len(plans[0].subjects) if llm.enabled else 0,
        "llm_users": users,
        "cache_hits": hits,
        "estimated_calls": calls,
        "estimated_prompt_tokens": est_prompt,
        "estimated_completion_tokens_max": est_completion,
        "llm_mode": llm.mode,
        "estimated_cost_max": round(cost, 6),
        "estimated_cost_max_batch": round(cost * llm.batch.price_factor, 6),
        "budget_tokens": llm.budget_tokens,
        "note": "tokens estimated at 4 characters per token; cache hits counted only when llm.structured_output is not 'auto' "
        "(users are counted as calls without a cache lookup); estimated_cost_max is the synchronous price, "
        "estimated_cost_max_batch the Batch API's (llm.batch.price_factor of it, first requests only)",
    }


def diff(job: JobLike, *, overrides: list[str] | None = None, full: bool = False) -> dict[str, Any]:
    """What ``run_job`` would do now against the last committed load: new, changed, unchanged, removed
    and stale subjects, new, changed and removed interactions, and the LLM calls and tokens that implies.
    Calls no LLM and touches no graph (:func:`kg_enhance.extract.delta.predict`)."""
    from kg_enhance.extract.delta import predict

    loaded = load(job, overrides=overrides)
    return predict(loaded.job, loaded.ontology, RunDir.for_job(loaded.job), full=full)


def run_dir(job: JobLike, *, overrides: list[str] | None = None) -> RunDir:
    """The job's run folder (``outputs.dir``, resolved against the job file's folder)."""
    spec = job if isinstance(job, JobSpec) else load_job(job, overrides=overrides)
    return RunDir.for_job(spec)


def quarantine(job: JobLike, *, overrides: list[str] | None = None) -> list[QuarantineRecord]:
    """The items (and users) whose LLM answers stayed invalid in the job's last extract run, with raw output and errors."""
    spec = validate_job(job, overrides=overrides)
    path = RunDir.for_job(spec).quarantine
    if not path.is_file():
        raise StageError(f"quarantine: {path} not found; run the extract stage of {spec.name!r} first")
    return [QuarantineRecord(**row) for row in read_jsonl(path)]


def open_graph(job: JobLike, *, overrides: list[str] | None = None) -> Neo4jStore:
    """A connected :class:`~kg_enhance.graph.store.Neo4jStore` for a job's ``neo4j`` settings (close it, or use ``with``)."""
    return Neo4jStore.for_job(validate_job(job, overrides=overrides))


def graph_namespaces(
    job: JobLike | None = None, *, overrides: list[str] | None = None
) -> list[dict[str, Any]]:
    """Every namespace in a Neo4j with its node counts and run lock (:meth:`Neo4jStore.namespaces`):
    the job's Neo4j, or without a job the project-managed local one (``neo4j`` settings' defaults)."""
    config = load(job, overrides=overrides).job.neo4j if job is not None else Neo4jConfig()
    with Neo4jStore(config) as store:
        return store.namespaces()


def drop_graph(job: JobLike, *, overrides: list[str] | None = None, force: bool = False) -> dict[str, Any]:
    """Delete a job's graph from its Neo4j: the items, users, facts, interactions, recommendations
    and vectors of its namespace, with its own entities and aliases. Other namespaces, and a
    shared entity namespace the job points into (``graph.entity_namespace``), are left alone; jobs
    that declare the same ``graph.namespace`` share it, and lose it together.

    Refuses (:class:`~kg_enhance.errors.GraphStoreError`) when other namespaces' facts point at
    this namespace's entities (jobs whose ``graph.entity_namespace`` is this namespace): deleting
    those entities would delete those facts. ``force`` deletes anyway; those jobs' next runs then
    see their graphs changed and load in full.

    Takes the run folder's lock and the namespace's graph lock first, so it refuses while a run
    of the job is in progress. The run folder is kept; its next run sees that the graph no longer
    matches the last committed load and loads in full, and ``load_embeddings(job=...)`` refuses
    its old vectors while the graph differs from the one they were trained on. Returns the
    namespace and the nodes deleted.
    """
    from kg_enhance.graph.lock import LockOwner, acquire

    spec = load(job, overrides=overrides).job  # the catalog's files need not exist any more
    run_id = "drop-" + new_run_id()
    owner = LockOwner.here(run_id=run_id, job=spec.name)
    with RunDir.for_job(spec).locked(owner.as_dict()), Neo4jStore.for_job(spec) as store:
        lock = acquire(store, owner, stale_after_s=spec.graph.lock_stale_after_s)
        try:
            users = store.namespaces_using_entities()
            if users and not force:
                raise GraphStoreError(
                    f"namespace {spec.namespace!r}: the facts of namespace(s) {', '.join(map(repr, users))} "
                    "point at its entities (their graph.entity_namespace); dropping it would delete those "
                    "facts too: drop those jobs first, or pass --force"
                )
            deleted = store.clear_namespace()
        finally:
            lock.release()
    return {"namespace": spec.namespace, "entity_namespace": spec.entity_namespace, "nodes_deleted": deleted}


def graph_fingerprint(job: JobLike, *, overrides: list[str] | None = None) -> dict[str, Any]:
    """Canonical hash of the job's graph (volatile properties and derived edges excluded), with counts."""
    with open_graph(job, overrides=overrides) as store:
        return _fingerprint(store).as_dict()


def bulk_load(
    job: JobLike,
    *,
    overrides: list[str] | None = None,
    echo: Callable[[str], None] | None = None,
    keep_files: bool = False,
    fingerprint: bool = False,
) -> dict[str, Any]:
    """First load of a job into the EMPTY database of the project-managed local Neo4j, offline.

    The graph a transactional load (``kg-enhance run JOB --only load``) would write,
    written as CSV files (:mod:`kg_enhance.graph.bulk`) and imported with the server's
    own ``neo4j-admin database import full neo4j --overwrite-destination``: the local
    server is stopped, the import replaces the ``neo4j`` database, the server is started
    again and the constraints and indexes are created. Names are resolved first against
    the live empty database with the vocabulary seeded, exactly as that load would.

    Refuses (:class:`~kg_enhance.errors.GraphStoreError`) when ``neo4j.uri`` is not the
    project-managed local server or its database holds any node. Returns the rows
    written per file, seconds per phase, the graph's totals and, with ``fingerprint``,
    the namespace fingerprint (a read of every node and edge: minutes on a large graph).
    """
    from kg_enhance.stages.load import item_rows, read_load_inputs, resolve_facts  # PyKEEN: see module doc

    say = echo or (lambda _line: None)
    loaded = load(job, overrides=overrides)
    spec, ontology = loaded.job, loaded.ontology
    uri = urlparse(spec.neo4j.uri)
    local = uri.hostname in ("127.0.0.1", "localhost") and (uri.port or 7687) == local_neo4j.bolt_port()
    if not local or not local_neo4j.status().running:
        raise GraphStoreError(
            f"bulk-load: neo4j.uri {spec.neo4j.uri} is not the running project-managed local Neo4j "
            f"(bolt://127.0.0.1:{local_neo4j.bolt_port()}, `kg-enhance neo4j start`); bulk-load stops and "
            "replaces that server's database, so it works nowhere else: load with `kg-enhance run JOB`"
        )
    if spec.neo4j.database != "neo4j":
        raise GraphStoreError("bulk-load: Neo4j Community has one user database; leave neo4j.database unset")
    run_id = new_run_id()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with Neo4jStore.for_job(spec) as store:
        held = store.node_count(limit=1000)
        if held:
            raise GraphStoreError(
                f"bulk-load: the database at {spec.neo4j.uri} holds {held if held < 1000 else '1000+'} node(s); "
                "bulk-load writes only into an empty database: load with `kg-enhance run JOB --only load` "
                "(transactional), or empty the database first"
            )
        say("reading the job's files")
        inputs = read_load_inputs(spec, ontology, run_dir(spec))
        seconds["read"] = round(time.perf_counter() - started, 3)
        say(f"resolving {len(inputs.facts)} facts' names")
        store.ensure_schema(ontology)  # resolution sees what a first transactional load sees: the vocabulary
        if spec.graph.resolution.seed_vocabulary:
            store.seed_vocabulary(ontology, run_id=run_id)
        resolutions = resolve_facts(store, spec, inputs.facts)
    seconds["resolve"] = round(time.perf_counter() - started - seconds["read"], 3)
    mark = time.perf_counter()
    folder = state_dir() / "bulk-import" / run_id
    graph = bulk.BulkGraph(
        namespace=spec.namespace,
        entity_namespace=spec.entity_namespace,
        job=spec.name,
        run_id=run_id,
        ontology=ontology,
        items=list(item_rows(inputs.items)),
        interactions=inputs.interactions,
        facts=inputs.facts,
        resolutions=resolutions,
        aliases=alias_rows(resolutions.values()),
        quarantine=inputs.quarantine,
        seed_vocabulary=spec.graph.resolution.seed_vocabulary,
    )
    files = bulk.write_import_files(graph, folder)
    seconds["csv"] = round(time.perf_counter() - mark, 3)
    say(f"stopping the local Neo4j and importing {', '.join(f'{v} {k}' for k, v in files.counts.items())}")
    mark = time.perf_counter()
    local_neo4j.stop()
    try:
        bulk.run_import(files)
    except GraphStoreError:
        try:  # leave an empty, working database rather than a half-written one
            bulk.import_empty(folder / "empty")
        finally:
            local_neo4j.start()
        raise
    seconds["import"] = round(time.perf_counter() - mark, 3)
    mark = time.perf_counter()
    say("starting the local Neo4j and creating constraints and indexes")
    try:
        local_neo4j.start()
    except ServiceUnavailableError as e:
        raise GraphStoreError(f"bulk-load: imported, but Neo4j did not start again: {e}") from e
    with Neo4jStore.for_job(spec) as store:
        store.ensure_schema(ontology)
        store.await_indexes()
        seconds["start_and_schema"] = round(time.perf_counter() - mark, 3)
        totals = store.totals()
        fp = _fingerprint(store).hash if fingerprint else None
    if not keep_files:
        shutil.rmtree(folder, ignore_errors=True)
    seconds["total"] = round(time.perf_counter() - started, 3)
    return {
        "run_id": run_id,
        "counts": files.counts,
        "seconds": seconds,
        "totals": totals,
        "fingerprint": fp,
        "files": str(folder) if keep_files else None,
    }


def load_embeddings(
    run_or_outputs_dir: str | Path | None = None,
    *,
    job: JobLike | None = None,
    version: str | None = None,
    expected_fingerprint: str | None = None,
    check_graph: bool = True,
) -> Embeddings:
    """Embeddings of a run: ``entity_vectors``, ``entity_to_id``, ``relation_vectors``, ``relation_to_id``, ``metadata``.

    Give the run folder (``outputs.dir``) or a ``job``. ``version`` picks an older embed
    run (default: the latest). To make sure the vectors still describe the graph you are
    asking about, pass that graph's fingerprint (``kg-enhance graph fingerprint``) as
    ``expected_fingerprint``; with a ``job`` (and ``check_graph``), its Neo4j is
    fingerprinted live. A mismatch raises :class:`~kg_enhance.errors.StageError` saying
    to re-run the embed stage.
    """
    if run_or_outputs_dir is None:
        if job is None:
            raise ConfigError("load_embeddings: give a run folder or job=")
        run_or_outputs_dir = run_dir(job).root
    if job is not None and check_graph and expected_fingerprint is None:
        expected_fingerprint = graph_fingerprint(job)["fingerprint"]
    return load_embeddings_dir(
        Path(run_or_outputs_dir), expected_fingerprint=expected_fingerprint, version=version
    )


ExportFormat = Literal["npy", "parquet", "pt"]


def export_embeddings(
    job: JobLike,
    *,
    out: str | Path,
    fmt: ExportFormat = "npy",
    version: str | None = None,
    check_graph: bool = True,
    overrides: list[str] | None = None,
) -> Embeddings:
    """Write the job's KG embeddings (vectors with id maps and metadata) to ``out`` as npy, parquet or pt.

    When the run has LLM text embeddings (the ``embed_text`` stage), they are written next to
    them: ``item_text_vectors`` (+ ``item_text_ids.json``), ``user_text_vectors`` (+
    ``user_text_ids.json``) when users were embedded, and ``text_metadata.json``.
    """
    spec = validate_job(job, overrides=overrides)
    emb = load_embeddings(job=spec, version=version, check_graph=check_graph)
    text = None
    if (run_dir(spec).text_embeddings / "metadata.json").exists():
        text = load_text_embeddings(run_dir(spec).root)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    if fmt == "npy":
        write_npy(target / "entity_vectors.npy", emb.entity_vectors)
        write_npy(target / "relation_vectors.npy", emb.relation_vectors)
    elif fmt == "parquet":
        write_with(target / "entity_vectors.parquet", lambda tmp: emb.to_pandas().to_parquet(tmp))
    else:
        tensors = {
            "entity_vectors": emb.to_torch(),
            "relation_vectors": torch.from_numpy(emb.relation_vectors),
        }
        if text is not None:
            tensors["item_text_vectors"] = torch.from_numpy(text.item_vectors)
            if text.user_ids:
                tensors["user_text_vectors"] = torch.from_numpy(text.user_vectors)
        write_with(target / "embeddings.pt", lambda tmp: torch.save(tensors, tmp))
    if text is not None:
        for kind, ids, vectors in (
            ("item", text.item_ids, text.item_vectors),
            ("user", text.user_ids, text.user_vectors),
        ):
            if not ids:
                continue
            if fmt == "npy":
                write_npy(target / f"{kind}_text_vectors.npy", vectors)
            elif fmt == "parquet":
                frame = pd.DataFrame(vectors, index=pd.Index(ids, name=f"{kind}_id"))
                frame.columns = [f"d{i}" for i in range(frame.shape[1])]
                write_with(target / f"{kind}_text_vectors.parquet", frame.to_parquet)
            write_json(target / f"{kind}_text_ids.json", ids, indent=None)
        write_json(target / "text_metadata.json", text.metadata)
    write_json(target / "entity_to_id.json", emb.entity_to_id, indent=None)
    write_json(target / "relation_to_id.json", emb.relation_to_id, indent=None)
    write_json(target / "metadata.json", emb.metadata)
    return emb


def explain_merge(
    job: JobLike, name_a: str, name_b: str, *, entity_type: str, overrides: list[str] | None = None
) -> list[str]:
    """Why two names are (or are not) one entity in the job's graph, as printable lines."""
    loaded = load(job, overrides=overrides)
    if entity_type not in loaded.ontology.entity_types:
        raise ConfigError(
            f"--type {entity_type!r} is not an entity type of ontology {loaded.ontology.name!r}; "
            f"use one of {', '.join(loaded.ontology.entity_types)}"
        )
    with Neo4jStore.for_job(loaded.job) as store:
        return explain(name_a, name_b, entity_type, store)


def export_rdf(
    job: JobLike,
    *,
    out: str | Path,
    fmt: str = "turtle",
    sources: list[str] | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Write the job's knowledge facts as Turtle or N-Triples under stable IRIs (see :mod:`kg_enhance.io.rdf`)."""
    loaded = load(job, overrides=overrides)
    with Neo4jStore.for_job(loaded.job) as store:
        rows = store.rdf_facts(sources)
    triples = _write_rdf(
        rows, Path(out), fmt=fmt, base=loaded.job.graph.rdf_base, item_label=loaded.ontology.item.label
    )
    return {"facts": len(rows), "triples": triples, "path": str(out), "format": fmt}


def export_recbole(job: JobLike, *, out: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Write the job's split and KG as RecBole atomic files (.inter per split part, .kg, .link) with a config."""
    from kg_enhance.stages.recommend import recommend_split

    spec = validate_job(job, overrides=overrides)
    with Neo4jStore.for_job(spec) as store:
        triples = store.item_fact_triples(spec.kge.sources)
        split = recommend_split(spec, store)
    return write_recbole(split, triples, Path(out), name=spec.name.replace(".", "_"), k=spec.recommender.k)


def ablate(
    job: JobLike,
    *,
    overrides: list[str] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """No KG vs gold KG vs LLM KG vs both on one split (see :mod:`kg_enhance.ablation`)."""
    from kg_enhance.ablation import run_ablation

    return run_ablation(validate_job(job, overrides=overrides), progress=progress, echo=echo)


def noise_curve(
    job: JobLike,
    *,
    shares: list[float],
    seeds: list[int] | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """NDCG@K of the KG model as a share of the gold facts is replaced by wrong entities of the same
    type, against no KG, over seeds (see :mod:`kg_enhance.noise_curve`)."""
    from kg_enhance.noise_curve import run_noise_curve

    spec = validate_job(job, overrides=overrides)
    return run_noise_curve(spec, shares=shares, seeds=seeds, progress=progress, echo=echo)


def recommend(
    user_id: str | int,
    k: int = 10,
    *,
    job: JobLike | None = None,
    run_dir: str | Path | None = None,
) -> list[Recommendation]:
    """Top-``k`` precomputed recommendations for a user, with KG-path explanations; no model or LLM is called.

    Give the ``job`` (or its run folder ``run_dir``; default ``$KG_ENHANCE_RUN_DIR``). Each
    result has ``item_id``, ``title``, ``rank``, ``score``, ``because``: ``(item the user
    interacted with, shared entity key)`` pairs, and ``because_names``: the same pairs by
    name (``(title, entity name)``; ids stand in for names a table written before names
    were stored lacks). Raises ``KeyError`` for users without recommendations.
    """
    if job is not None and run_dir is None:
        spec = job if isinstance(job, JobSpec) else load_job(job)
        run_dir = RunDir.for_job(spec).root
    return list(recommender_for(run_dir).recommend(user_id, k))


def report(
    job: JobLike,
    *,
    overrides: list[str] | None = None,
    colour_by: str | None = None,
    store_factory: Callable[[], GraphStore] | None = None,
    open_browser: bool = False,
) -> Path:
    """Write ``report.html`` into the job's run folder (one self-contained page: stages with timings,
    CPU and memory, graph statistics, knowledge quality, KGE and recommender metrics with their
    training curves, the ablation, a 2-D projection of the item vectors) and return its path.

    Only the last run's figures are shown; stages it did not run say so. The item projection
    is coloured by ``colour_by`` (a relation; default: the one with the most facts), with
    facts read from the job's files and the run folder, or from ``store_factory``'s graph
    store when given (no Neo4j is needed otherwise). ``open_browser`` opens the page.
    """
    from kg_enhance.report import write_html_report

    loaded = load(job, overrides=overrides)
    store = store_factory() if store_factory is not None else None
    try:
        path = write_html_report(
            RunDir.for_job(loaded.job),
            job=loaded.job,
            ontology=loaded.ontology,
            store=store,
            colour_by=colour_by,
        )
    finally:
        if store is not None:
            store.close()
    if open_browser:
        webbrowser.open(path.as_uri())
    return path


def prepare_dataset(
    name: str, *, source: str | Path | None = None, out: str | Path | None = None
) -> dict[str, Any]:
    """Write a public dataset's job data from its release files (see
    :func:`kg_enhance.datasets.movielens.prepare_dataset`); returns row counts and the folder.

    ``ml-latest-small``: ``movies.csv``, ``ratings.csv`` and ``gold_facts.tsv`` (HetRec directors,
    countries, tags as themes) for ``examples/jobs/ml-latest-small.yaml``. ``source`` defaults to
    ``../shared/data/movielens`` beside the checkout, ``out`` to ``data/ml-latest-small`` in it.
    """
    folder = Path(out).expanduser() if out is not None else movielens.DEFAULT_PREPARED
    counts = movielens.prepare_dataset(
        name, source=Path(source) if source is not None else None, out_dir=folder
    )
    return {**counts, "dir": str(folder)}


def job_json_schema() -> dict[str, Any]:
    return JobSpec.model_json_schema()


def ontology_json_schema() -> dict[str, Any]:
    return Ontology.model_json_schema()


def write_schemas(*, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``job.schema.json`` and ``ontology.schema.json`` (for editor autocompletion)."""
    target = Path(out_dir) if out_dir else resource_dir("schemas")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in (
        ("job.schema.json", job_json_schema()),
        ("ontology.schema.json", ontology_json_schema()),
    ):
        path = target / name
        path.write_text(
            json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
        )
        written.append(path)
    return written
