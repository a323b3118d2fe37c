"""What KG-joined recommenders receive: item and entity vectors and the item-entity edges."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from kg_enhance.kge.artifacts import Embeddings
from kg_enhance.names import ENTITY, ITEM, anchor_of, node_label
from kg_enhance.rec.data import Split


@dataclass
class KGInputs:
    #: (n_items, d) PyKEEN vectors in split item order; zero rows where the item is not in the KG
    item_vectors: torch.Tensor
    #: (n_items,) 1.0 where the item has a KG vector
    item_mask: torch.Tensor
    #: (n_entities, d) PyKEEN vectors of the entities items point at
    entity_vectors: torch.Tensor
    #: (n_edges, 2) item row, entity row
    item_entity_edges: np.ndarray
    entity_keys: list[str]
    #: (n_facts, 3) item row, entity row, relation row: the edges with their relation (one
    #: row per distinct relation of an item-entity pair); None when relations are unknown
    item_entity_relations: np.ndarray | None = None
    relation_keys: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return float(self.item_mask.mean()) if len(self.item_mask) else 0.0

    def model_kwargs(self) -> dict[str, object]:
        return {
            "kg_vectors": self.item_vectors,
            "kg_mask": self.item_mask,
            "entity_vectors": self.entity_vectors,
            "item_entity_edges": self.item_entity_edges,
            "item_entity_relations": self.item_entity_relations,
            # names of the relation rows (kg_knn's ``kg_relations``; the other models ignore them)
            "relation_keys": list(self.relation_keys),
        }


def build_kg_inputs(emb: Embeddings, split: Split, triples: Iterable[tuple[str, str, str]]) -> KGInputs:
    """Align embeddings with the split's item rows; ``triples`` are ``(item:<id>, REL, entity:<key>)``."""
    dim = emb.entity_vectors.shape[1]
    items = np.zeros((split.n_items, dim), dtype=np.float32)
    mask = np.zeros(split.n_items, dtype=np.float32)
    for row, item_id in enumerate(split.item_ids):
        idx = emb.entity_to_id.get(node_label(ITEM, item_id))
        if idx is not None:
            items[row] = emb.entity_vectors[idx]
            mask[row] = 1.0
    item_row = {item_id: row for row, item_id in enumerate(split.item_ids)}
    entity_row: dict[str, int] = {}
    relation_row: dict[str, int] = {}
    edges = set()
    facts = set()
    for head, relation, tail in triples:
        head_item = anchor_of(head, ITEM)
        if head_item is None or anchor_of(tail, ENTITY) is None:
            continue
        i = item_row.get(head_item)
        if i is None or tail not in emb.entity_to_id:
            continue
        e = entity_row.setdefault(tail, len(entity_row))
        edges.add((i, e))
        facts.add((i, e, relation_row.setdefault(relation, len(relation_row))))
    keys = sorted(entity_row, key=entity_row.__getitem__)
    ent = (
        emb.entity_vectors[[emb.entity_to_id[k] for k in keys]]
        if keys
        else np.zeros((0, dim), dtype=np.float32)
    )
    return KGInputs(
        item_vectors=torch.from_numpy(items),
        item_mask=torch.from_numpy(mask),
        entity_vectors=torch.from_numpy(np.asarray(ent, dtype=np.float32)),
        item_entity_edges=np.asarray(sorted(edges), dtype=np.int64).reshape(-1, 2),
        entity_keys=keys,
        item_entity_relations=np.asarray(sorted(facts), dtype=np.int64).reshape(-1, 3),
        relation_keys=sorted(relation_row, key=relation_row.__getitem__),
    )
