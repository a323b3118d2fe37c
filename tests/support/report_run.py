"""A run worth a report, on the in-memory graph store (no services, under a minute on 2 cores).

The whole pipeline with a scripted LLM endpoint, so that the report has LLM facts to
compare with HetRec, a quarantined item and dropped facts; tiny epochs. Used by the
report's unit tests and by the real-browser test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from kg_enhance import api
from kg_enhance.graph.memory import InMemoryGraphStore
from kg_enhance.pipeline import RunResult
from tests.support.helpers import JOB_NAME, write_job
from tests.support.scripted_server import ScriptedServer, Step

#: small models, two recommenders (one needs the KG vectors)
SMALL = """
kge: {dim: 8, epochs: 5}
recommender: {epochs: 4, dim: 8, models: [{type: bpr_mf}, {type: kg_lightgcn}]}
"""


def _answer(*facts: tuple[str, str, str]) -> Step:
    rows = [{"relation": r, "object": o, "object_type": t, "confidence": 0.8} for r, o, t in facts]
    return Step(text=json.dumps({"facts": rows}))


#: answers for the first four movies (1 Toy Story, 2 Jumanji, 6 Heat, 10 GoldenEye), asked in order
SCRIPT = [
    _answer(  # one fact HetRec has, one self-loop (dropped), one genre
        ("DIRECTED_BY", "John Lasseter", "Person"),
        ("DIRECTED_BY", "Toy Story", "Person"),
        ("HAS_GENRE", "Animation", "Genre"),
    ),
    Step(text="not json"),  # Jumanji: invalid three times -> quarantined
    Step(text="still not json"),
    Step(text='{"facts": 3}'),
    _answer(  # a duplicate and a copied "field: value" (both dropped)
        ("DIRECTED_BY", "Michael Mann", "Person"),
        ("DIRECTED_BY", "Michael Mann", "Person"),
        ("PRODUCED_IN", "title: USA", "Country"),
    ),
]


@dataclass
class ReportRun:
    job: Path
    result: RunResult
    store: InMemoryGraphStore
    html: Path

    @property
    def text(self) -> str:
        return self.html.read_text(encoding="utf-8")


def report_run(tmp: Path) -> ReportRun:
    """Run the job in ``tmp`` (its own LLM cache) and write its ``report.html``."""
    with pytest.MonkeyPatch.context() as mp, ScriptedServer(list(SCRIPT)) as server:
        mp.setenv("KG_ENHANCE_HOME", str(tmp / "state"))
        job = write_job(tmp, item_limit=4, extra=SMALL)
        job.write_text(job.read_text().replace("base_url: http", f"base_url: {server.url}\n  # http"))
        store = InMemoryGraphStore(namespace=JOB_NAME)
        result = api.run_job(job, progress=False, store_factory=lambda: store)
        html = api.report(job)
    return ReportRun(job=job, result=result, store=store, html=html)
