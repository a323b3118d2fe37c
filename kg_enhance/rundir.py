"""The run folder: every artifact path of a job's run, named in one place.

Layout (``outputs.dir`` of the job, resolved against the job file's folder)::

    report.json                 run id, stage statuses, timings and resource use, one section per stage
    report.html                 the same as one self-contained page (``kg-enhance report``)
    extract/facts.jsonl         validated LLM facts (one JSON object per line)
    extract/quarantine.jsonl    subjects whose answers stayed invalid, with raw output and errors
    extract/dropped.json        single facts removed by semantic checks, per subject
    extract/extracted_ids.json  the item and user ids the LLM answered for
    extract/batch/              llm.mode batch: items.state.json / users.state.json (batches in flight),
                                followup.jsonl (--import-batch: the repairs and retries to run next)
    load/rejected_facts.txt     rows of fact files that did not fit the ontology
    embeddings/<version>/       entity_vectors.npy, relation_vectors.npy, *_to_id.json, metadata.json
    embeddings/LATEST           the newest version's name
    text_embeddings/            LLM text vectors: item_vectors.npy + item_ids.json (user_* too), metadata.json
    recommend/metrics.json      per-model metrics; recommend/<model>.pt weights, <model>.ids.json their row ids
    recommend/topk.parquet      precomputed top-K of the best model
    export/                     item_vectors.npy + item_ids.json (catalog order), entities.parquet,
                                item_text_vectors.npy (catalog order) when text embeddings exist
    ablation/                   ablation.json and ablation.png; noise.json, noise.csv, noise.png (--fact-noise)
    delta/                      incremental refresh state (:mod:`kg_enhance.extract.delta`): committed
                                subjects.parquet, interactions.parquet, state.json; this run's plan.json
                                and next_subjects.parquet; last_full.json

Every file is written to a temporary name and renamed (:mod:`kg_enhance.io.files`).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kg_enhance.config.models import JobSpec
from kg_enhance.errors import LockHeldError
from kg_enhance.io.files import write_json
from kg_enhance.paths import resolve_data_path


def outputs_path(job: JobSpec) -> Path:
    """``outputs.dir``: absolute, or relative to the job file's folder like every other job path."""
    return resolve_data_path(job.outputs.dir, base=job.base_dir).resolve()


def new_run_id() -> str:
    """A run id: start time to the second plus 6 random hex digits (sorts by time)."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass(frozen=True)
class RunDir:
    """Paths of one job's run folder; creates sub-folders on demand."""

    root: Path

    @classmethod
    def for_job(cls, job: JobSpec) -> RunDir:
        return cls(outputs_path(job))

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        return cls(Path(path).expanduser().resolve())

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def create(self) -> None:
        """Make the run folder, private to its owner (it holds catalog text and raw LLM answers)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- one writer at a time ------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    @contextmanager
    def locked(self, owner: dict[str, Any]) -> Iterator[None]:
        """Hold the run folder's lock (an OS file lock: released by the kernel when the process dies).

        A second run of the same folder raises :class:`LockHeldError` naming the holder.
        """
        self.create()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
                raise LockHeldError(
                    f"run folder {self.root} is in use by {holder}; wait for that run to finish"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(owner).encode("utf-8"), 0)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # -- report --------------------------------------------------------------------------------
    @property
    def report_path(self) -> Path:
        return self.root / "report.json"

    def read_report(self) -> dict[str, Any]:
        """The last report; an unreadable one is moved aside to ``report.json.corrupt``."""
        path = self.report_path
        if not path.exists():
            return {}
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            path.replace(path.with_suffix(".json.corrupt"))
            return {}
        return value if isinstance(value, dict) else {}

    def write_report(self, report: dict[str, Any]) -> Path:
        self.create()
        return write_json(self.report_path, report)

    @property
    def report_html(self) -> Path:
        """The page about the run (``kg-enhance report``), made from ``report.json``."""
        return self.root / "report.html"

    # -- extract -------------------------------------------------------------------------------
    @property
    def extract_dir(self) -> Path:
        return self.root / "extract"

    @property
    def facts(self) -> Path:
        return self.extract_dir / "facts.jsonl"

    @property
    def quarantine(self) -> Path:
        return self.extract_dir / "quarantine.jsonl"

    @property
    def dropped(self) -> Path:
        return self.extract_dir / "dropped.json"

    @property
    def extracted_ids(self) -> Path:
        return self.extract_dir / "extracted_ids.json"

    @property
    def batch_dir(self) -> Path:
        """``llm.mode: batch`` state (batches in flight) and ``--import-batch`` follow-up requests."""
        return self.extract_dir / "batch"

    def batch_state(self, head: str) -> Path:
        return self.batch_dir / f"{'users' if head == 'User' else 'items'}.state.json"

    @property
    def batch_followup(self) -> Path:
        return self.batch_dir / "followup.jsonl"

    # -- load ----------------------------------------------------------------------------------
    @property
    def rejected_facts(self) -> Path:
        return self.root / "load" / "rejected_facts.txt"

    # -- embed ---------------------------------------------------------------------------------
    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings"

    @property
    def text_embeddings(self) -> Path:
        return self.root / "text_embeddings"

    # -- recommend -----------------------------------------------------------------------------
    @property
    def recommend_dir(self) -> Path:
        return self.root / "recommend"

    def model_weights(self, key: str) -> Path:
        return self.recommend_dir / f"{key}.pt"

    def model_ids(self, key: str) -> Path:
        """The user, item and entity ids of the weights' rows (for a warm start), next to the weights."""
        return self.recommend_dir / f"{key}.ids.json"

    @property
    def train_pairs(self) -> Path:
        """The (user id, item id) training interactions of the last recommend run: a warm start is
        refused when any of them is a validation or test interaction of the new split."""
        return self.recommend_dir / "train_pairs.parquet"

    @property
    def metrics(self) -> Path:
        return self.recommend_dir / "metrics.json"

    @property
    def topk(self) -> Path:
        return self.recommend_dir / "topk.parquet"

    @property
    def test_per_user(self) -> Path:
        """Each model's test NDCG@K and Recall@K per test user (paired tests between models or runs)."""
        return self.recommend_dir / "test_per_user.parquet"

    # -- export --------------------------------------------------------------------------------
    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    @property
    def item_vectors(self) -> Path:
        return self.export_dir / "item_vectors.npy"

    @property
    def item_text_vectors(self) -> Path:
        return self.export_dir / "item_text_vectors.npy"

    @property
    def item_ids(self) -> Path:
        return self.export_dir / "item_ids.json"

    @property
    def entities_table(self) -> Path:
        return self.export_dir / "entities.parquet"

    # -- delta (incremental refresh) -----------------------------------------------------------
    @property
    def delta_dir(self) -> Path:
        return self.root / "delta"

    @property
    def delta_subjects(self) -> Path:
        return self.delta_dir / "subjects.parquet"

    @property
    def delta_interactions(self) -> Path:
        return self.delta_dir / "interactions.parquet"

    @property
    def delta_fact_groups(self) -> Path:
        return self.delta_dir / "fact_groups.parquet"

    @property
    def delta_state(self) -> Path:
        return self.delta_dir / "state.json"

    @property
    def delta_next_subjects(self) -> Path:
        return self.delta_dir / "next_subjects.parquet"

    @property
    def delta_plan(self) -> Path:
        return self.delta_dir / "plan.json"

    @property
    def delta_last_full(self) -> Path:
        return self.delta_dir / "last_full.json"

    # -- ablation ------------------------------------------------------------------------------
    @property
    def ablation_dir(self) -> Path:
        return self.root / "ablation"

    @property
    def ablation_table(self) -> Path:
        return self.ablation_dir / "ablation.json"

    @property
    def ablation_plot(self) -> Path:
        return self.ablation_dir / "ablation.png"
