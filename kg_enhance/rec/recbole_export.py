"""RecBole atomic files of the job's split and KG, so peers train on exactly the same data.

Writes ``<name>.train.inter``, ``<name>.valid.inter``, ``<name>.test.inter`` (RecBole's
``benchmark_filename`` layout: the split is used as is, not re-split), ``<name>.kg``
(item-entity facts as ``head_id``/``relation_id``/``tail_id``), ``<name>.link``
(``item_id`` -> ``entity_id``) and ``<name>.yaml``, a RecBole config that reads them
with full ranking at the job's K.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from kg_enhance.names import ENTITY, ITEM, anchor_of, node_label


def _write(path: Path, header: list[str], rows: Iterable[Iterable[Any]]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\t".join(header) + "\n")
        for row in rows:
            fh.write("\t".join(str(v).replace("\t", " ") for v in row) + "\n")
            n += 1
    return n


def export_recbole(
    split: Any, triples: Iterable[tuple[str, str, str]], out_dir: Path, *, name: str, k: int
) -> dict[str, Any]:
    out_dir = out_dir / name
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for part in ("train", "valid", "test"):
        pairs: np.ndarray = getattr(split, part)
        counts[part] = _write(
            out_dir / f"{name}.{part}.inter",
            ["user_id:token", "item_id:token", "label:float"],
            ((split.user_ids[u], split.item_ids[i], 1.0) for u, i in pairs.tolist()),
        )
    items = set(split.item_ids)
    found: set[tuple[str, str, str]] = set()
    for h, r, t in triples:
        item_id, key = anchor_of(h, ITEM), anchor_of(t, ENTITY)
        if item_id is not None and key is not None and item_id in items:
            found.add((item_id, r, key))
    facts = sorted(found)
    # items are entities of the KG too: the link maps each item to an entity id of its own
    counts["kg"] = _write(
        out_dir / f"{name}.kg",
        ["head_id:token", "relation_id:token", "tail_id:token"],
        ((node_label(ITEM, h), r, node_label(ENTITY, t)) for h, r, t in facts),
    )
    linked = sorted({h for h, _, _ in facts})
    counts["link"] = _write(
        out_dir / f"{name}.link",
        ["item_id:token", "entity_id:token"],
        ((i, node_label(ITEM, i)) for i in linked),
    )
    config = f"""# RecBole config for the kg_enhance split of this job (read with config_file_list=[this file])
data_path: {out_dir.parent}
dataset: {name}
benchmark_filename: [train, valid, test]
USER_ID_FIELD: user_id
ITEM_ID_FIELD: item_id
HEAD_ENTITY_ID_FIELD: head_id
TAIL_ENTITY_ID_FIELD: tail_id
RELATION_ID_FIELD: relation_id
ENTITY_ID_FIELD: entity_id
load_col:
  inter: [user_id, item_id, label]
  kg: [head_id, relation_id, tail_id]
  link: [item_id, entity_id]
eval_args:
  split: {{RS: [0.8, 0.1, 0.1]}}
  group_by: user
  order: RO
  mode: full
topk: [{k}]
metrics: [Recall, NDCG, Hit]
valid_metric: NDCG@{k}
"""
    (out_dir / f"{name}.yaml").write_text(config)
    return {"dir": str(out_dir), **counts}
