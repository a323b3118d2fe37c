"""The public Python API. Keyword-only arguments throughout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kg_enhance.config.job import load_job, ontology_path
from kg_enhance.config.models import JobSpec
from kg_enhance.kge.artifacts import Embeddings, load_embeddings_dir
from kg_enhance.paths import resource_dir
from kg_enhance.types import QuarantineRecord


def validate_job(path: str | Path, *, overrides: list[str] | None = None) -> JobSpec:
    """Load and validate a job file and the ontology it names; raises :class:`ConfigError`."""
    from kg_enhance.ontology.models import load_ontology

    job = load_job(path, overrides=overrides)
    load_ontology(ontology_path(job))
    return job


def run_job(
    path: str | Path,
    *,
    until: str | None = None,
    only: list[str] | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    echo: Any = None,
) -> dict[str, Any]:
    """Run a job's stages and return the report (also written to ``<outputs.dir>/report.json``)."""
    from kg_enhance.pipeline import run_pipeline, select_stages

    job = validate_job(path, overrides=overrides)
    stages = select_stages(until=until, only=only, job=job)
    return run_pipeline(job, stages=stages, progress=progress, echo=echo)


def dry_run(path: str | Path, *, overrides: list[str] | None = None) -> dict[str, Any]:
    """What a run would do, without calling the LLM or touching Neo4j: items, cache hits, estimated tokens."""
    from kg_enhance.datasets.tables import read_items
    from kg_enhance.extract.cache import ExtractionCache
    from kg_enhance.extract.engine import subject_cache_key
    from kg_enhance.extract.prompts import load_template, render_item_prompt
    from kg_enhance.ontology.models import load_ontology
    from kg_enhance.paths import state_dir

    job = validate_job(path, overrides=overrides)
    ontology = load_ontology(ontology_path(job))
    items, _ = read_items(job)
    selected = items[: job.llm.item_limit] if job.llm.item_limit else items
    template = load_template(job.llm.prompt_template)
    prompt_chars = sum(
        sum(
            len(m["content"]) for m in render_item_prompt(template, ontology, it, grounding=job.llm.grounding)
        )
        for it in selected
    )
    cache_path = state_dir() / "cache" / "extract.sqlite"
    hits = 0
    if cache_path.exists() and job.llm.structured_output != "auto":
        cache = ExtractionCache(cache_path)
        keys = [
            subject_cache_key(
                model=job.llm.model,
                generation={
                    "temperature": job.llm.temperature,
                    "max_tokens": job.llm.max_tokens,
                    "seed": job.llm.seed,
                },
                mode=job.llm.structured_output,
                template_hash=template.hash,
                ontology_fingerprint=ontology.fingerprint(),
                grounding=job.llm.grounding,
                head="Item",
                item=it,
            )
            for it in selected
        ]
        hits = len(cache.get_many(keys))
        cache.close()
    calls = len(selected) - hits if job.llm.enabled else 0
    users = 0
    if job.llm.enabled and job.llm.users.enabled:
        from kg_enhance.datasets.tables import read_users

        all_users = read_users(job)
        user_sample = all_users[: job.llm.users.limit] if job.llm.users.limit else all_users
        user_template = load_template(job.llm.users.prompt_template)
        users = len(user_sample)
        prompt_chars += sum(
            sum(
                len(m["content"])
                for m in render_item_prompt(
                    user_template, ontology, u, grounding=job.llm.users.grounding, head="User"
                )
            )
            for u in user_sample
        )
        selected = [*selected, *user_sample]
        calls += users
    est_prompt = int(prompt_chars / 4 * (calls / max(1, len(selected))))
    est_completion = calls * job.llm.max_tokens
    return {
        "job": job.name,
        "catalog_items": len(items),
        "llm_items": len(selected) - users if job.llm.enabled else 0,
        "llm_users": users,
        "cache_hits": hits,
        "estimated_calls": calls,
        "estimated_prompt_tokens": est_prompt,
        "estimated_completion_tokens_max": est_completion,
        "estimated_cost_max": round(
            est_prompt / 1e6 * job.llm.price_per_1m_input_tokens
            + est_completion / 1e6 * job.llm.price_per_1m_output_tokens,
            6,
        ),
        "budget_tokens": job.llm.budget_tokens,
        "note": "tokens estimated at 4 characters per token; cache hits counted only when llm.structured_output is not 'auto' "
        "(users are counted as calls without a cache lookup)",
    }


def quarantine(path: str | Path, *, overrides: list[str] | None = None) -> list[QuarantineRecord]:
    """The items (and users) whose LLM answers stayed invalid in the job's last extract run, with raw output and errors."""
    from kg_enhance.errors import StageError
    from kg_enhance.pipeline import outputs_dir

    job = validate_job(path, overrides=overrides)
    qpath = outputs_dir(job) / "extract" / "quarantine.jsonl"
    if not qpath.is_file():
        raise StageError(f"quarantine: {qpath} not found; run the extract stage of {job.name!r} first")
    with open(qpath, encoding="utf-8") as fh:
        return [QuarantineRecord(**json.loads(line)) for line in fh if line.strip()]


def load_embeddings(
    run_or_outputs_dir: str | Path,
    *,
    version: str | None = None,
    expected_fingerprint: str | None = None,
    job: str | Path | None = None,
) -> Embeddings:
    """Embeddings of a run: ``entity_vectors``, ``entity_to_id``, ``relation_vectors``, ``relation_to_id``, ``metadata``.

    ``version`` picks an older embed run (default: the latest). To make sure the
    vectors still describe the graph you are asking about, pass that graph's
    fingerprint (``kg-enhance graph fingerprint``) as ``expected_fingerprint``, or a
    ``job`` file, whose Neo4j is then fingerprinted live: a mismatch raises
    :class:`~kg_enhance.errors.StageError` saying to re-run the embed stage.
    """
    if job is not None and expected_fingerprint is None:
        expected_fingerprint = graph_fingerprint(job)["fingerprint"]
    return load_embeddings_dir(
        Path(run_or_outputs_dir), expected_fingerprint=expected_fingerprint, version=version
    )


def open_graph(path: str | Path, *, overrides: list[str] | None = None) -> Any:
    """A connected :class:`~kg_enhance.graph.store.Neo4jStore` for a job's ``neo4j`` settings (close it, or use ``with``)."""
    from kg_enhance.graph.store import Neo4jStore

    return Neo4jStore(validate_job(path, overrides=overrides).neo4j)


def graph_fingerprint(path: str | Path, *, overrides: list[str] | None = None) -> dict[str, Any]:
    """Canonical hash of the job's graph (volatile properties and derived edges excluded), with counts."""
    from kg_enhance.graph.fingerprint import graph_fingerprint as fingerprint

    with open_graph(path, overrides=overrides) as store:
        return fingerprint(store).as_dict()


def explain_merge(
    path: str | Path, name_a: str, name_b: str, *, entity_type: str, overrides: list[str] | None = None
) -> list[str]:
    """Why two names are (or are not) one entity in the job's graph, as printable lines."""
    from kg_enhance.errors import ConfigError
    from kg_enhance.graph.resolve import explain
    from kg_enhance.ontology.models import load_ontology

    job = validate_job(path, overrides=overrides)
    ontology = load_ontology(ontology_path(job))
    if entity_type not in ontology.entity_types:
        raise ConfigError(
            f"--type {entity_type!r} is not an entity type of ontology {ontology.name!r}; "
            f"use one of {', '.join(ontology.entity_types)}"
        )
    with open_graph(path, overrides=overrides) as store:
        return explain(name_a, name_b, entity_type, store)


def export_rdf(
    path: str | Path,
    *,
    out: str | Path,
    fmt: str = "turtle",
    sources: list[str] | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Write the job's knowledge facts as Turtle or N-Triples under stable IRIs (see :mod:`kg_enhance.graph.rdf`)."""
    from kg_enhance.graph.rdf import export_rdf as write
    from kg_enhance.ontology.models import load_ontology

    job = validate_job(path, overrides=overrides)
    ontology = load_ontology(ontology_path(job))
    with open_graph(path, overrides=overrides) as store:
        rows = store.run_statement("read/rdf_facts", sources=sources)
    triples = write(rows, Path(out), fmt=fmt, base=job.graph.rdf_base, item_label=ontology.item.label)
    return {"facts": len(rows), "triples": triples, "path": str(out), "format": fmt}


def recommend(user_id: str | int, k: int = 10, *, run_dir: str | Path | None = None) -> list[Any]:
    """Top-``k`` precomputed recommendations for a user, with KG-path explanations; no model or LLM is called.

    ``run_dir`` is a run directory (``outputs.dir``); default ``$KG_ENHANCE_RUN_DIR`` or
    ``runs/movielens-demo``. Each result has ``item_id``, ``rank``, ``score`` and ``because``:
    ``(item the user interacted with, shared entity key)`` pairs. Raises ``KeyError`` for
    users without recommendations.
    """
    from kg_enhance.rec.serve import recommender_for

    return list(recommender_for(run_dir).recommend(user_id, k))


def job_json_schema() -> dict[str, Any]:
    return JobSpec.model_json_schema()


def ontology_json_schema() -> dict[str, Any]:
    from kg_enhance.ontology.models import Ontology

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
