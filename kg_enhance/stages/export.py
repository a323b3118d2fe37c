"""Export: the KG vectors in catalog order, for any downstream model (no Neo4j needed to read them).

Writes ``export/item_vectors.npy`` (one row per catalog item, zeros where the item
has no vector), ``export/item_ids.json`` and ``export/entities.parquet``; when the run
has LLM text embeddings (``embed_text``), also ``export/item_text_vectors.npy`` in the
same catalog order.
"""

from __future__ import annotations

import numpy as np

from kg_enhance.io.files import write_json, write_npy, write_with
from kg_enhance.io.tables import read_items
from kg_enhance.kge.artifacts import load_embeddings_dir, load_text_embeddings
from kg_enhance.names import ITEM, node_label
from kg_enhance.stages.base import Stage, StageContext, StageResult


class ExportResult(StageResult):
    """The ``export`` section of ``report.json``."""

    items: int
    items_with_vectors: int
    dim: int
    #: rows of ``item_text_vectors.npy`` with a text vector (None: the run has no text embeddings)
    items_with_text_vectors: int | None = None
    text_dim: int | None = None
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
        text_present = text_dim = None
        if (run.text_embeddings / "metadata.json").exists():
            text = load_text_embeddings(run.root)
            text_matrix, mask = text.aligned(ids)
            write_npy(run.item_text_vectors, text_matrix)
            text_present, text_dim = int(mask.sum()), text.dim
        else:
            run.item_text_vectors.unlink(missing_ok=True)  # never leave an older run's text vectors behind
        return ExportResult(
            items=len(ids),
            items_with_vectors=present,
            dim=emb.dim,
            dir=str(run.export_dir),
            items_with_text_vectors=text_present,
            text_dim=text_dim,
        )
