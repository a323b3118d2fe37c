"""The run folder: every artifact path of a job's run, named in one place.

Layout (``outputs.dir`` of the job, resolved against the job file's folder)::

    report.json                 run id, stage statuses and timings, one section per stage
    extract/facts.jsonl         validated LLM facts (one JSON object per line)
    extract/quarantine.jsonl    subjects whose answers stayed invalid, with raw output and errors
    extract/dropped.json        single facts removed by semantic checks, per subject
    extract/extracted_ids.json  the item and user ids the LLM answered for
    load/rejected_facts.txt     rows of fact files that did not fit the ontology
    embeddings/<version>/       entity_vectors.npy, relation_vectors.npy, *_to_id.json, metadata.json
    embeddings/LATEST           the newest version's name
    recommend/metrics.json      per-model metrics; recommend/<model>.pt weights
    recommend/topk.parquet      precomputed top-K of the best model
    export/                     item_vectors.npy + item_ids.json (catalog order), entities.parquet
    ablation/                   ablation.json and ablation.png

Every file is written to a temporary name and renamed (:mod:`kg_enhance.io.files`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kg_enhance.config.models import JobSpec
from kg_enhance.io.files import write_json
from kg_enhance.paths import resolve_data_path


def outputs_path(job: JobSpec) -> Path:
    """``outputs.dir``: absolute, or relative to the job file's folder like every other job path."""
    return resolve_data_path(job.outputs.dir, base=job.base_dir).resolve()


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
        path.mkdir(parents=True, exist_ok=True)
        return path

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
        self.root.mkdir(parents=True, exist_ok=True)
        return write_json(self.report_path, report)

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

    # -- load ----------------------------------------------------------------------------------
    @property
    def rejected_facts(self) -> Path:
        return self.root / "load" / "rejected_facts.txt"

    # -- embed ---------------------------------------------------------------------------------
    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings"

    # -- recommend -----------------------------------------------------------------------------
    @property
    def recommend_dir(self) -> Path:
        return self.root / "recommend"

    def model_weights(self, key: str) -> Path:
        return self.recommend_dir / f"{key}.pt"

    @property
    def metrics(self) -> Path:
        return self.recommend_dir / "metrics.json"

    @property
    def topk(self) -> Path:
        return self.recommend_dir / "topk.parquet"

    # -- export --------------------------------------------------------------------------------
    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    @property
    def item_vectors(self) -> Path:
        return self.export_dir / "item_vectors.npy"

    @property
    def item_ids(self) -> Path:
        return self.export_dir / "item_ids.json"

    @property
    def entities_table(self) -> Path:
        return self.export_dir / "entities.parquet"

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
