"""What every stage shares: the run context it gets and the typed result it returns.

A stage is a small component (the neo4j-graphrag-python pattern): its :meth:`Stage.run`
signature says what it needs (a :class:`StageContext`: the job, the ontology loaded
once for the run, the run folder, a :class:`~kg_enhance.graph.store.GraphStore`) and
it returns a pydantic :class:`StageResult` that serialises into its section of
``report.json``. Stages never read each other's results from memory: what a later
stage needs travels through the run folder or the graph, so any stage can run alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from kg_enhance.config.models import JobSpec
from kg_enhance.graph.store import GraphStore, Neo4jStore
from kg_enhance.ontology.models import Ontology
from kg_enhance.rundir import RunDir


class StageResult(BaseModel):
    """A stage's section of ``report.json``."""

    model_config = ConfigDict(extra="forbid")

    def to_report(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass
class StageContext:
    """Everything a stage may use. The graph store opens on first use and closes with the run."""

    job: JobSpec
    ontology: Ontology
    run: RunDir
    run_id: str
    progress: bool = True
    #: ``run --strict``: an input problem the readers count raises a DataError instead
    strict: bool = False
    #: ``run --retry-quarantined``: ask the LLM again about subjects the extraction cache remembers as quarantined
    retry_quarantined: bool = False
    #: ``extract --import-batch FILE``: take the answers from this Batch API output file instead of asking the LLM
    import_batch: Path | None = None
    #: ``run --full``: no incremental refresh (every subject extracted, graph fully rewritten, models
    #: trained from scratch); without it a run does only what changed (:mod:`kg_enhance.extract.delta`)
    full: bool = False
    store_factory: Callable[[], GraphStore] | None = None
    _store: GraphStore | None = field(default=None, repr=False)

    @property
    def store(self) -> GraphStore:
        if self._store is None:
            self._store = self.store_factory() if self.store_factory else Neo4jStore.for_job(self.job)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


R = TypeVar("R", bound=StageResult, covariant=True)


class Stage(Generic[R]):
    """One pipeline stage: ``name`` (for ``--only``/``--until``), its report ``section``, and ``run``."""

    name: ClassVar[str]
    section: ClassVar[str]

    def run(self, ctx: StageContext) -> R:
        raise NotImplementedError
