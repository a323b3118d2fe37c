"""The pipeline: orders the stages of :mod:`kg_enhance.stages` and runs them.

Each stage writes its own section of ``report.json`` (``extract``, ``graph``, ``kge``,
``recommend``, ``export``) and its status under ``stages``, so any stage can be
re-run alone (``--only``). The run folder's layout is documented in
:mod:`kg_enhance.rundir`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kg_enhance.config.models import STAGES, JobSpec
from kg_enhance.errors import StageError
from kg_enhance.graph.store import GraphStore
from kg_enhance.ontology.models import Ontology
from kg_enhance.rundir import RunDir
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


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def select_stages(
    *, until: str | None = None, only: list[str] | None = None, job: JobSpec | None = None
) -> list[str]:
    """The stages to run, in pipeline order; stages the job turns off are left out."""
    if only:
        unknown = [s for s in only if s not in STAGES]
        if unknown:
            raise StageError(f"--only {','.join(unknown)}: unknown stage; stages are {', '.join(STAGES)}")
        return [s for s in STAGES if s in only]
    if until is not None and until not in STAGES:
        raise StageError(f"--until {until}: unknown stage; stages are {', '.join(STAGES)}")
    stages = list(STAGES[: STAGES.index(until) + 1]) if until else list(STAGES)
    if job is not None:
        if not job.kge.enabled:
            stages = [s for s in stages if s not in ("embed", "export")]
        if not job.recommender.enabled:
            stages = [s for s in stages if s != "recommend"]
    return stages


def run_pipeline(
    job: JobSpec,
    ontology: Ontology,
    *,
    stages: list[str],
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    store_factory: Callable[[], GraphStore] | None = None,
) -> RunResult:
    """Run ``stages`` of ``job`` in order; the report is saved after every stage."""
    run = RunDir.for_job(job)
    run.root.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id()
    report = run.read_report()
    report.update(
        {"job": job.name, "run_id": run_id, "ontology": ontology.name, "outputs_dir": str(run.root)}
    )
    report.setdefault("stages", {})
    result = RunResult(job=job.name, run_id=run_id, run=run, report=report)
    ctx = StageContext(
        job=job, ontology=ontology, run=run, run_id=run_id, progress=progress, store_factory=store_factory
    )
    try:
        for name in stages:
            stage = STAGE_REGISTRY[name]
            if echo:
                echo(f"[{name}] running")
            started = time.perf_counter()
            try:
                section = stage.run(ctx)
            except BaseException:
                report["stages"][name] = {
                    "seconds": round(time.perf_counter() - started, 3),
                    "status": "failed",
                    "run_id": run_id,
                }
                run.write_report(report)
                raise
            seconds = round(time.perf_counter() - started, 3)
            report["stages"][name] = {"seconds": seconds, "status": "ok", "run_id": run_id}
            report[stage.section] = section.to_report()
            result.results[name] = section
            run.write_report(report)
            if echo:
                echo(f"[{name}] done in {seconds:.1f}s")
    finally:
        ctx.close()
    return result
