"""The pipeline: orders the stages of :mod:`kg_enhance.stages` and runs them.

Each stage writes its own section of ``report.json`` (``extract``, ``graph``,
``text_embeddings``, ``kge``, ``recommend``, ``export``) and its status under ``stages``, so any stage can be
re-run alone (``--only``). The run folder's layout is documented in
:mod:`kg_enhance.rundir`.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg_enhance.config.models import STAGES, JobSpec
from kg_enhance.errors import StageError
from kg_enhance.extract.delta import read_plan
from kg_enhance.graph.lock import LockOwner, acquire
from kg_enhance.graph.store import GraphStore
from kg_enhance.io.files import write_json
from kg_enhance.ontology.models import Ontology
from kg_enhance.rundir import RunDir, new_run_id
from kg_enhance.stages import STAGE_REGISTRY, StageContext, StageResult


@dataclass
class RunResult:
    """What one ``run_pipeline`` call did: the typed result of each stage it ran, and the report."""

    job: str
    run_id: str
    run: RunDir
    #: results of the stages that ran in this run, by stage name, in order
    results: dict[str, StageResult] = field(default_factory=dict)
    #: ``report.json`` as written (sections of stages not run in this run are from earlier runs)
    report: dict[str, Any] = field(default_factory=dict)


def skip_reasons(job: JobSpec) -> dict[str, str]:
    """The stages the job itself leaves out, each with why (recorded under ``stages.<name>.reason``)."""
    reasons: dict[str, str] = {}
    if not job.kge.enabled:
        reasons["embed"] = "kge.enabled is false"
        reasons["export"] = "kge.enabled is false (export writes the KG vectors)"
    if not job.recommender.enabled:
        reasons["recommend"] = "recommender.enabled is false"
    elif job.source.interactions is None and job.recommender.interactions == "files":
        reasons["recommend"] = (
            "the job declares no source.interactions, so there is nothing to train a recommender on "
            "(the other stages run without it)"
        )
    return reasons


def plan_stages(
    *, until: str | None = None, only: list[str] | None = None, job: JobSpec | None = None
) -> tuple[list[str], dict[str, str]]:
    """The stages to run, in pipeline order, and the ones ``job`` leaves out with why.

    Stages named with ``only`` run as asked; with ``until`` (or neither) the stages the
    job turns off (:func:`skip_reasons`) are left out and returned with their reasons.
    """
    if only:
        unknown = [s for s in only if s not in STAGES]
        if unknown:
            raise StageError(f"--only {','.join(unknown)}: unknown stage; stages are {', '.join(STAGES)}")
        return [s for s in STAGES if s in only], {}
    if until is not None and until not in STAGES:
        raise StageError(f"--until {until}: unknown stage; stages are {', '.join(STAGES)}")
    stages = list(STAGES[: STAGES.index(until) + 1]) if until else list(STAGES)
    if job is not None and not job.text_embeddings.enabled:  # an optional step: left out without a word
        stages = [s for s in stages if s != "embed_text"]
    reasons = skip_reasons(job) if job is not None else {}
    return [s for s in stages if s not in reasons], {s: r for s, r in reasons.items() if s in stages}


def select_stages(
    *, until: str | None = None, only: list[str] | None = None, job: JobSpec | None = None
) -> list[str]:
    """The stages to run, in pipeline order; stages the job turns off are left out (see :func:`plan_stages`)."""
    return plan_stages(until=until, only=only, job=job)[0]


#: stages that read or write the graph, and so hold the namespace's lock
GRAPH_STAGES = frozenset({"load", "embed_text", "embed", "recommend"})
#: the ``stages.<name>.status`` values of ``report.json``
STATUSES = ("pending", "running", "ok", "failed", "interrupted", "skipped")


def _start_report(
    run: RunDir,
    job: JobSpec,
    ontology: Ontology,
    run_id: str,
    stages: list[str],
    skipped: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The report of a new run: every stage is ``skipped`` or about to run; nothing from earlier runs is current.

    The last successful run of a skipped stage is named (``last_ok_run_id``): its
    artifacts are still on disk, but its figures are not this run's and are not shown.
    A stage still ``running`` in the old report belonged to a run that died (this run
    holds the folder's lock): it is recorded as ``interrupted``.
    """
    old = run.read_report()
    old_stages: dict[str, Any] = old.get("stages") or {}
    statuses: dict[str, Any] = {}
    for name in STAGES:
        before = old_stages.get(name) or {}
        last_ok = before.get("run_id") if before.get("status") == "ok" else before.get("last_ok_run_id")
        statuses[name] = {"status": "pending" if name in stages else "skipped", "last_ok_run_id": last_ok}
        if skipped and name in skipped and name not in stages:
            statuses[name]["reason"] = skipped[name]
    report: dict[str, Any] = {
        "job": job.name,
        "namespace": job.namespace,
        "run_id": run_id,
        "ontology": ontology.name,
        "outputs_dir": str(run.root),
        "stages": statuses,
    }
    interrupted = [n for n, st in old_stages.items() if st.get("status") == "running"]
    if interrupted:
        report["previous_run"] = {"run_id": old.get("run_id"), "interrupted_in": interrupted}
    if "ablation" in old:  # written by `kg-enhance ablate`, with its own split and timing
        report["ablation"] = old["ablation"]
    return report


def run_pipeline(
    job: JobSpec,
    ontology: Ontology,
    *,
    stages: list[str],
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    store_factory: Callable[[], GraphStore] | None = None,
    strict: bool = False,
    retry_quarantined: bool = False,
    import_batch: Path | None = None,
    skipped: dict[str, str] | None = None,
    full: bool = False,
) -> RunResult:
    """Run ``stages`` of ``job`` in order, holding the run folder's lock and, for graph stages,
    the namespace's lock; the report is saved before and after every stage.

    ``skipped``: stages the job leaves out, with why (:func:`plan_stages`): each reason is
    written to ``stages.<name>.reason`` and said once through ``echo`` when the run starts.

    ``strict``: an input problem the readers would count (see :mod:`kg_enhance.io.tables`)
    raises a :class:`~kg_enhance.errors.DataError` instead. ``retry_quarantined``: the
    extract stage asks again about subjects quarantined by earlier runs. ``import_batch``:
    the extract stage takes its answers from that Batch API output file.
    """
    run = RunDir.for_job(job)
    run_id = new_run_id()
    owner = LockOwner.here(run_id=run_id, job=job.name)
    ctx = StageContext(
        job=job,
        ontology=ontology,
        run=run,
        run_id=run_id,
        progress=progress,
        strict=strict,
        retry_quarantined=retry_quarantined,
        import_batch=import_batch,
        full=full,
        store_factory=store_factory,
    )
    with run.locked(owner.as_dict()):
        report = _start_report(run, job, ontology, run_id, stages, skipped)
        run.write_report(report)
        if echo:
            for name, reason in (skipped or {}).items():
                echo(f"[{name}] skipped: {reason}")
        result = RunResult(job=job.name, run_id=run_id, run=run, report=report)
        graph_lock = None
        try:
            if GRAPH_STAGES & set(stages):
                graph_lock = acquire(ctx.store, owner, stale_after_s=job.graph.lock_stale_after_s)
            for name in stages:
                _run_stage(name, ctx, result, echo)
            section = delta_section(run, run_id, report, stages)
            if section is not None:
                report["delta"] = section
                run.write_report(report)
        finally:
            if graph_lock is not None:
                graph_lock.release()
            ctx.close()
    return result


def delta_section(
    run: RunDir, run_id: str, report: dict[str, Any], stages: list[str]
) -> dict[str, Any] | None:
    """The report's ``delta`` section: what this run found changed and did (counts per kind), the
    warm starts, and the stage seconds saved against the last full run (``delta/last_full.json``).

    A full run of every stage becomes the new reference for the seconds saved.
    """
    plan = read_plan(run)
    if plan.get("run_id") != run_id:
        plan = {}  # the extract stage did not run in this run
    graph = report.get("graph") if "load" in stages else None
    mode = plan.get("mode") or (graph or {}).get("mode")
    if mode is None:
        return None
    seconds = {
        name: float(report["stages"][name]["seconds"])
        for name in stages
        if report["stages"].get(name, {}).get("status") == "ok"
    }
    last_full: dict[str, Any] = {}
    try:
        last_full = json.loads(run.delta_last_full.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    saved = {
        name: round(float(last_full["stage_seconds"][name]) - s, 3)
        for name, s in seconds.items()
        if name in (last_full.get("stage_seconds") or {})
    }
    refresh = (graph or {}).get("refresh") or {}
    section: dict[str, Any] = {
        "mode": mode,
        "reason": plan.get("reason") or refresh.get("reason"),
        "subjects": plan.get("subjects") or {},
        "interactions": refresh.get("interactions") or {},
        "items_retired": refresh.get("items_retired"),
        "orphans_deleted": {
            "entities": refresh.get("orphan_entities_deleted"),
            "users": refresh.get("orphan_users_deleted"),
        },
        "llm": plan.get("llm") or {},
        "staleness": plan.get("staleness") or {},
        "warm_start": {
            "kge": (report.get("kge") or {}).get("warm_start") if "embed" in stages else None,
            "recommend": (report.get("recommend") or {}).get("warm_start") if "recommend" in stages else None,
        },
        "stage_seconds": seconds,
        "last_full_run_id": last_full.get("run_id"),
        "seconds_saved": saved,
        "seconds_saved_total": round(sum(saved.values()), 3) if saved else None,
    }
    if mode == "full" and {"extract", "load"} <= set(stages) and len(seconds) == len(stages):
        write_json(run.delta_last_full, {"run_id": run_id, "stage_seconds": seconds}, indent=None)
    return section


#: ``ru_maxrss`` is in KiB on Linux, in bytes on macOS
_MAXRSS_BYTES = 1 if sys.platform == "darwin" else 1024


@dataclass(frozen=True)
class _Usage:
    """CPU time (user + system, all threads) and peak resident memory of this process so far."""

    cpu_seconds: float
    peak_rss_mib: float

    @classmethod
    def now(cls) -> _Usage:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return cls(ru.ru_utime + ru.ru_stime, ru.ru_maxrss * _MAXRSS_BYTES / 2**20)

    def since(self, before: _Usage) -> dict[str, float]:
        """The ``stages.<name>`` resource fields: CPU seconds of the stage, the process's peak RSS at
        its end, and how much the stage raised that peak (0 when it stayed below an earlier stage's)."""
        return {
            "cpu_seconds": round(self.cpu_seconds - before.cpu_seconds, 3),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "peak_rss_increase_mib": round(max(0.0, self.peak_rss_mib - before.peak_rss_mib), 1),
        }


def _run_stage(name: str, ctx: StageContext, result: RunResult, echo: Callable[[str], None] | None) -> None:
    stage = STAGE_REGISTRY[name]
    report, status = result.report, result.report["stages"][name]
    if echo:
        echo(f"[{name}] running")
    usage = _Usage.now()
    started = time.perf_counter()
    status.update({"status": "running", "run_id": ctx.run_id})
    ctx.run.write_report(report)
    try:
        section = stage.run(ctx)
    except BaseException as e:
        interrupted = isinstance(e, (KeyboardInterrupt, SystemExit))
        status.update(
            {
                "status": "interrupted" if interrupted else "failed",
                "seconds": round(time.perf_counter() - started, 3),
                **_Usage.now().since(usage),
            }
        )
        if not interrupted:
            status["error"] = " ".join(str(e).split())[:500]
        ctx.run.write_report(report)
        raise
    seconds = round(time.perf_counter() - started, 3)
    status.update(
        {"status": "ok", "seconds": seconds, **_Usage.now().since(usage), "last_ok_run_id": ctx.run_id}
    )
    report[stage.section] = section.to_report()
    result.results[name] = section
    ctx.run.write_report(report)
    if echo:
        echo(f"[{name}] done in {seconds:.1f}s")
