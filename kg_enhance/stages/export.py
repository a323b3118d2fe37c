"""Export: the KG vectors in catalog order, for any downstream model (no Neo4j needed to read them).

Writes ``export/item_vectors.npy`` (one row per catalog item, zeros where the item
has no vector), ``export/item_ids.json`` and ``export/entities.parquet``.
"""

from __future__ import annotations

import numpy as np

from kg_enhance.io.files import write_json, write_npy, write_with
from kg_enhance.io.tables import read_items
from kg_enhance.kge.artifacts import load_embeddings_dir
from kg_enhance.names import ITEM, node_label
from kg_enhance.stages.base import Stage, StageContext, StageResult


class ExportResult(StageResult):
    """The ``export`` section of ``report.json``."""

    items: int
    items_with_vectors: int
    dim: int
    dir: str


class ExportStage(Stage[ExportResult]):
    name = "export"
    section = "export"

    def run(self, ctx: StageContext) -> ExportResult:
        run = ctx.run
        emb = load_embeddings_dir(run.root)
        items, _ = read_items(ctx.job)
        ids = [i.item_id for i in items]
        matrix = np.zeros((len(ids), emb.dim), dtype=np.float32)
        present = 0
        for row, item_id in enumerate(ids):
            idx = emb.entity_to_id.get(node_label(ITEM, item_id))
            if idx is not None:
                matrix[row] = emb.entity_vectors[idx]
                present += 1
        write_npy(run.item_vectors, matrix)
        write_json(run.item_ids, ids, indent=None)
        write_with(run.entities_table, lambda tmp: emb.to_pandas().to_parquet(tmp))
        return ExportResult(items=len(ids), items_with_vectors=present, dim=emb.dim, dir=str(run.export_dir))
