"""Recommender models in torch, behind one registry (class-resolver).

Baselines (no KG):

* ``bpr_mf``: matrix factorisation trained with BPR (Rendle et al., 2009).
* ``lightgcn``: LightGCN (He et al., 2020): embeddings smoothed over the normalised
  user-item graph, layer outputs averaged.

KG-joined:

* ``kg_bpr``: BPR-MF whose item vectors are fused with the PyKEEN item vectors through
  a learned per-dimension gate; the KG vectors are frozen (``freeze_kg: true``, the
  default) or fine-tuned.
* ``kg_lightgcn``: LightGCN over the collaborative KG (user-item edges plus item-entity
  fact edges); item and entity embeddings start from the PyKEEN vectors, so knowledge
  reaches items with few interactions through the entities they share.

Every model is built from ``(n_users, n_items, dim, **params)`` plus what it declares
it needs (``needs_kg``, ``needs_graph``), and exposes ``representations()``: the user
and item matrices a dot product scores.

LLM text embeddings (any model, ``text: true`` in its spec): given ``text_vectors``
(one standardised LLM text vector per item, :mod:`kg_enhance.rec.text`) the item's
layer-0 vector becomes ``e_i + P t_i``: ``t_i`` frozen, ``P`` a projection from the text
space to ``dim`` scaled so ``P t_i`` has the size of ``e_i``. By default ``P`` is a fixed
random projection (it keeps the text space's geometry, Johnson-Lindenstrauss): the text
is a persistent prior on where the item sits, and the ID embedding ``e_i`` learns the
residual. ``params: {text_trainable: true}`` learns ``P`` instead, and
``text_components: k`` first reduces the text to its ``k`` whitened principal components.
A learned ``P`` overfit on the demo (it can map any item anywhere once the text has more
dimensions than there are items; measured in benchmarks/RESULTS.md). Items without text
get ``e_i`` alone. Fusing at layer 0 means graph models propagate the text signal too, and
items with few interactions get a vector from their text that an ID embedding cannot give.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from class_resolver import ClassResolver
from torch import nn


class RecModel(nn.Module):
    """Base class: ``representations()`` give the user and item vectors a dot product scores.

    Models whose batch loss touches only the batch's rows (``row_wise``: the
    factorisation models) look rows up through sparse embeddings, so the optimiser
    updates those rows only (``torch.optim.SparseAdam``): a step costs the batch, not the
    catalog. Graph models propagate over the whole graph and train dense.
    """

    needs_kg: ClassVar[bool] = False
    needs_graph: ClassVar[bool] = False
    row_wise: ClassVar[bool] = False
    #: the name used in job files (the resolver also accepts the class name)
    key: ClassVar[str] = ""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        *,
        text_vectors: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        text_components: int | None = None,
        text_trainable: bool = False,
        **_: Any,
    ) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim, sparse=self.row_wise)
        self.item = nn.Embedding(n_items, dim, sparse=self.row_wise)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        self.text_proj: nn.Linear | None = None
        if text_vectors is not None:
            mask = torch.ones(n_items) if text_mask is None else text_mask.float()
            if text_vectors.shape[0] != n_items or mask.shape[0] != n_items:
                raise ValueError(f"text_vectors has {text_vectors.shape[0]} rows for {n_items} items")
            vectors = text_vectors.float()
            if text_components is not None and text_components < min(vectors.shape):
                vectors = _whitened_components(vectors, mask, int(text_components))
            self.register_buffer("text", vectors * mask.unsqueeze(-1))
            self.register_buffer("text_mask", mask.unsqueeze(-1))
            self.text_proj = nn.Linear(vectors.shape[1], dim, bias=False)
            # standardised text (unit variance per dimension) comes out at the scale of the ID embeddings;
            # a fixed projection is drawn from its own seed, so the model's other initialisation is unchanged
            gen = torch.Generator().manual_seed(0)
            with torch.no_grad():
                self.text_proj.weight.copy_(
                    torch.randn(self.text_proj.weight.shape, generator=gen)
                    * (0.1 / float(np.sqrt(vectors.shape[1])))
                )
            self.text_proj.weight.requires_grad_(bool(text_trainable))

    def item_table(self) -> torch.Tensor:
        """Layer-0 item vectors: the ID embeddings, plus the projected text vectors when given."""
        if self.text_proj is None:
            return self.item.weight
        out: torch.Tensor = self.item.weight + self.text_proj(self.get_buffer("text")) * self.get_buffer(
            "text_mask"
        )
        return out

    def item_rows(self, items: torch.Tensor) -> torch.Tensor:
        """:meth:`item_table` rows of ``items`` only (row-wise models: the batch, not the catalog)."""
        rows: torch.Tensor = self.item(items)
        if self.text_proj is None:
            return rows
        out: torch.Tensor = (
            rows + self.text_proj(self.get_buffer("text")[items]) * self.get_buffer("text_mask")[items]
        )
        return out

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user.weight, self.item_table()

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for ``users`` (small catalogs and tests; evaluation scores in chunks)."""
        u, i = self.representations()
        return u[users] @ i.T

    def batch_vectors(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The vectors a BPR batch scores; row-wise models look up only these rows."""
        u_all, i_all = self.representations()
        return u_all[users], i_all[pos], i_all[neg]

    def regularised(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, u: torch.Tensor, i: torch.Tensor
    ) -> torch.Tensor:
        """L2 term of a batch; by default on the scored vectors themselves."""
        return (u[users].pow(2).sum() + i[pos].pow(2).sum() + i[neg].pow(2).sum()) / users.shape[0]

    def bpr_terms(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.row_wise:
            u, ip, ineg = self.batch_vectors(users, pos, neg)
            reg = (u.pow(2).sum() + ip.pow(2).sum() + ineg.pow(2).sum()) / users.shape[0]
        else:
            u_all, i_all = self.representations()
            u, ip, ineg = u_all[users], i_all[pos], i_all[neg]
            reg = self.regularised(users, pos, neg, u_all, i_all)
        diff = (u * ip).sum(-1) - (u * ineg).sum(-1)
        return -nn.functional.logsigmoid(diff).mean(), reg


def _whitened_components(vectors: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """The top ``k`` principal components of the rows with text, each scaled to unit variance
    (randomised PCA: linear in the items)."""
    rows = mask > 0
    present = vectors[rows]
    mean = present.mean(0, keepdim=True)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    _, _, v = torch.pca_lowrank(present - mean, q=k, center=False, niter=4)
    torch.random.set_rng_state(gen_state)
    z = (vectors - mean) @ v[:, :k]
    std = z[rows].std(0, keepdim=True).clamp_min(1e-8)
    out: torch.Tensor = z / std
    return out


class BPRMF(RecModel):
    """Plain matrix factorisation with the BPR pairwise loss."""

    key = "bpr_mf"
    row_wise = True

    def batch_vectors(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.user(users), self.item_rows(pos), self.item_rows(neg)


class KGBPR(RecModel):
    """BPR-MF with item vectors fused with KG embeddings through a learned gate.

    ``item = e_i + sigmoid(g) * (W kg_i)``, where ``kg_i`` is the PyKEEN vector of
    the item (zero and masked out for items absent from the KG).
    """

    needs_kg = True
    key = "kg_bpr"
    row_wise = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        *,
        kg_vectors: torch.Tensor,
        kg_mask: torch.Tensor,
        freeze_kg: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(n_users, n_items, dim, **kwargs)
        self.kg = nn.Embedding.from_pretrained(kg_vectors.float(), freeze=freeze_kg, sparse=True)  # type: ignore[no-untyped-call]
        self.register_buffer("kg_mask", kg_mask.float().unsqueeze(-1))
        self.proj = nn.Linear(kg_vectors.shape[1], dim, bias=False)
        nn.init.xavier_uniform_(self.proj.weight, gain=0.5)
        self.gate = nn.Parameter(torch.zeros(dim))

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        kg = self.proj(self.kg.weight) * self.kg_mask
        return self.user.weight, self.item_table() + torch.sigmoid(self.gate) * kg

    def _items(self, items: torch.Tensor) -> torch.Tensor:
        mask = self.get_buffer("kg_mask")
        kg = self.proj(self.kg(items)) * mask[items]
        out: torch.Tensor = self.item_rows(items) + torch.sigmoid(self.gate) * kg
        return out

    def batch_vectors(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.user(users), self._items(pos), self._items(neg)


def normalised_adjacency(n_nodes: int, edges: np.ndarray) -> torch.Tensor:
    """Symmetric ``D^-1/2 A D^-1/2`` of an undirected graph given as (a, b) node pairs."""
    if len(edges) == 0:
        return torch.sparse_coo_tensor(
            torch.zeros((2, 0), dtype=torch.long), torch.zeros(0), (n_nodes, n_nodes)
        )
    a = np.concatenate([edges[:, 0], edges[:, 1]])
    b = np.concatenate([edges[:, 1], edges[:, 0]])
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    deg = np.bincount(pairs[:, 0], minlength=n_nodes).astype(np.float32)
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    values = inv[pairs[:, 0]] * inv[pairs[:, 1]]
    index = torch.as_tensor(pairs.T, dtype=torch.long)
    return torch.sparse_coo_tensor(
        index, torch.as_tensor(values), (n_nodes, n_nodes), check_invariants=False
    ).coalesce()


class LightGCN(RecModel):
    """LightGCN: ego embeddings propagated ``layers`` times over the user-item graph, averaged."""

    needs_graph = True
    key = "lightgcn"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        *,
        train_pairs: np.ndarray,
        layers: int = 3,
        extra_nodes: int = 0,
        extra_edges: np.ndarray | None = None,
        **kwargs: Any,
    ) -> None:
        """``extra_nodes``/``extra_edges`` (node rows after users and items) let subclasses add nodes to the graph."""
        super().__init__(n_users, n_items, dim, **kwargs)
        self.n_users, self.n_items, self.layers = n_users, n_items, int(layers)
        edges = np.stack([train_pairs[:, 0], train_pairs[:, 1] + n_users], axis=1)
        if extra_edges is not None and len(extra_edges):
            edges = np.concatenate([edges, extra_edges])
        self.register_buffer("adj", normalised_adjacency(n_users + n_items + extra_nodes, edges))

    def ego(self) -> torch.Tensor:
        return torch.cat([self.user.weight, self.item_table()])

    def propagate(self, ego: torch.Tensor) -> torch.Tensor:
        out, h = ego, ego
        for _ in range(self.layers):
            h = torch.sparse.mm(self.adj, h)
            out = out + h
        return out / (self.layers + 1)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        final = self.propagate(self.ego())
        return final[: self.n_users], final[self.n_users : self.n_users + self.n_items]

    def regularised(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, u: torch.Tensor, i: torch.Tensor
    ) -> torch.Tensor:
        ego = self.ego()  # LightGCN regularises the layer-0 embeddings
        eu, ei = ego[: self.n_users], ego[self.n_users :]
        return (eu[users].pow(2).sum() + ei[pos].pow(2).sum() + ei[neg].pow(2).sum()) / users.shape[0]


class KGLightGCN(LightGCN):
    """LightGCN over the collaborative KG: users, items and entities in one graph.

    Edges are the training interactions plus the item-entity facts. Item and entity
    ego embeddings start from the PyKEEN vectors, mapped to ``dim`` by a fixed random
    projection (scaled to the size of the other embeddings) and then trained.
    """

    needs_kg = True
    key = "kg_lightgcn"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        *,
        train_pairs: np.ndarray,
        kg_vectors: torch.Tensor,
        kg_mask: torch.Tensor,
        entity_vectors: torch.Tensor,
        item_entity_edges: np.ndarray,
        layers: int = 3,
        kg_init_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        n_entities = int(entity_vectors.shape[0])
        entity_edges = np.stack(
            [item_entity_edges[:, 0] + n_users, item_entity_edges[:, 1] + n_users + n_items], axis=1
        ).reshape(-1, 2)
        super().__init__(
            n_users,
            n_items,
            dim,
            train_pairs=train_pairs,
            layers=layers,
            extra_nodes=n_entities,
            extra_edges=entity_edges,
            **kwargs,
        )
        self.n_entities = n_entities
        gen = torch.Generator().manual_seed(0)
        proj = torch.randn(kg_vectors.shape[1], dim, generator=gen) / np.sqrt(dim)

        def scaled(x: torch.Tensor) -> torch.Tensor:
            y = x.float() @ proj
            std = y[y.abs().sum(-1) > 0].std() if (y.abs().sum(-1) > 0).any() else torch.tensor(1.0)
            out: torch.Tensor = y / (std + 1e-8) * 0.1 * kg_init_scale
            return out

        with torch.no_grad():
            self.item.weight.add_(scaled(kg_vectors) * kg_mask.float().unsqueeze(-1))
        self.entity = nn.Embedding(max(1, n_entities), dim)
        with torch.no_grad():
            if n_entities:
                self.entity.weight.copy_(scaled(entity_vectors))

    def ego(self) -> torch.Tensor:
        return torch.cat([self.user.weight, self.item_table(), self.entity.weight[: self.n_entities]])


rec_model_resolver: ClassResolver[RecModel] = ClassResolver(
    [BPRMF, LightGCN, KGBPR, KGLightGCN], base=RecModel
)


def model_keys() -> list[str]:
    return sorted(cls.key for cls in rec_model_resolver)


def check_model_type(name: str) -> str:
    try:
        rec_model_resolver.lookup(name)
    except (KeyError, ValueError):
        valid = ", ".join(model_keys())
        raise ValueError(f"unknown recommender type {name!r}; valid types: {valid}") from None
    return name
