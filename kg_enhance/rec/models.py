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
* ``kg_hybrid``: LightGCN's collaborative channel plus a knowledge channel (items: the
  relation-weighted mean of their entities; users: the mean of their items), scored as a sum,
  so items with few interactions score through the facts they share with a user's history.
* ``kgat``: relation-aware attentive propagation over the same graph (KGAT-like): each
  edge is weighted by an attention over its relation and end points.

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

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from class_resolver import ClassResolver
from torch import nn

from kg_enhance.rec.neighbours import (
    NeighbourScores,
    collaborative_features,
    item_knn,
    knowledge_features,
    term_spread,
    user_profiles,
)

#: initialisations of the ID embedding tables (model parameter ``init``)
INITS = ("normal", "xavier")


def init_embeddings(weight: torch.Tensor, init: str) -> None:
    """``normal``: N(0, 0.1^2); ``xavier``: Glorot-uniform over the (rows, dim) table, as RecBole's
    LightGCN does (bound ``sqrt(6 / (rows + dim))``: smaller on large tables)."""
    if init == "normal":
        nn.init.normal_(weight, std=0.1)
    elif init == "xavier":
        nn.init.xavier_uniform_(weight)
    else:
        raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")


def init_std(rows: int, dim: int, init: str) -> float:
    """The standard deviation :func:`init_embeddings` gives a ``(rows, dim)`` table."""
    return 0.1 if init == "normal" else float(np.sqrt(2.0 / (rows + dim)))


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
    #: Adam's learning rate when neither the model's entry (``recommender.models[].learning_rate``)
    #: nor ``recommender.learning_rate`` sets one; a subclass inherits its base's (kg_lightgcn,
    #: kg_hybrid and kgat LightGCN's). The same for every model today: at 0.02 LightGCN leaves its
    #: plateau on ml-latest-small, but kg_lightgcn scores lower there (one seed) and on the demo (2 of
    #: 3 seeds; benchmarks/RESULTS.md, "Early stopping on a plateau"), so no model overrides it.
    default_learning_rate: ClassVar[float] = 0.005
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
        init: str = "normal",
        **_: Any,
    ) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim, sparse=self.row_wise)
        self.item = nn.Embedding(n_items, dim, sparse=self.row_wise)
        init_embeddings(self.user.weight, init)
        init_embeddings(self.item.weight, init)
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

    def extra_scores(self) -> NeighbourScores | None:
        """Terms added to the dot product when ranking (the ``*_knn`` models); None for the others."""
        return None

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


def kg_projection(vectors: torch.Tensor, dim: int, size: float) -> torch.Tensor:
    """PyKEEN vectors mapped to ``dim`` by a fixed random projection (seed 0, the same for every
    call), scaled so the non-zero rows have standard deviation ``size``."""
    gen = torch.Generator().manual_seed(0)
    proj = torch.randn(vectors.shape[1], dim, generator=gen) / np.sqrt(dim)
    y = vectors.float() @ proj
    present = y.abs().sum(-1) > 0
    std = y[present].std() if present.any() else torch.tensor(1.0)
    out: torch.Tensor = y / (std + 1e-8) * size
    return out


def item_entity_facts(item_entity_edges: np.ndarray, item_entity_relations: np.ndarray | None) -> np.ndarray:
    """``(item, entity, relation)`` rows: the given relations, or relation 0 for every edge when unknown."""
    if item_entity_relations is not None:
        return np.asarray(item_entity_relations, dtype=np.int64).reshape(-1, 3)
    edges = np.asarray(item_entity_edges, dtype=np.int64).reshape(-1, 2)
    return np.concatenate([edges, np.zeros((len(edges), 1), np.int64)], axis=1)


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
        init: str = "normal",
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
            init=init,
            **kwargs,
        )
        self.n_entities = n_entities
        # KG vectors come in at the spread of the item ID embeddings (0.1 with the normal init)
        size = init_std(n_items, dim, init) * kg_init_scale
        with torch.no_grad():
            self.item.weight.add_(kg_projection(kg_vectors, dim, size) * kg_mask.float().unsqueeze(-1))
        self.entity = nn.Embedding(max(1, n_entities), dim)
        with torch.no_grad():
            if n_entities:
                self.entity.weight.copy_(kg_projection(entity_vectors, dim, size))

    def ego(self) -> torch.Tensor:
        return torch.cat([self.user.weight, self.item_table(), self.entity.weight[: self.n_entities]])


def _row_mean_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """Sparse ``shape`` matrix averaging, per row, the columns it lists (``1 / degree`` each)."""
    pairs = np.unique(np.stack([rows, cols], axis=1).reshape(-1, 2), axis=0)
    deg = np.bincount(pairs[:, 0], minlength=shape[0]).astype(np.float32)
    values = np.zeros(len(pairs), dtype=np.float32)
    if len(pairs):
        values = 1.0 / deg[pairs[:, 0]]
    return torch.sparse_coo_tensor(
        torch.as_tensor(pairs.T.copy(), dtype=torch.long).reshape(2, -1),
        torch.as_tensor(values),
        shape,
        check_invariants=False,
    ).coalesce()


class KGHybrid(LightGCN):
    """LightGCN's collaborative channel plus a knowledge channel, scored as their sum.

    * **Collaborative**: LightGCN over the user-item graph alone, so knowledge never changes
      its normalisation (in ``kg_lightgcn`` an item's facts dilute what it hears from users).
    * **Knowledge**: an item's vector is the mean over its facts ``(r, e)`` of
      ``w_r * x_e`` (a trainable entity table ``x``, started from the PyKEEN vectors as in
      ``kg_lightgcn``, and one trainable weight vector per relation, started at 1); a
      user's is the mean of its training items' knowledge vectors.

    ``score(u, i) = c_u . c_i + q_u . k_i``: the second term is the content route
    user -> item -> entity <- item, so an item with few or no interactions that shares a
    director or a theme with a user's history scores through it, and an item without facts
    scores through the first term alone. :meth:`representations` returns both channels side
    by side (``2 x dim`` columns), so one dot product gives the sum.

    Parameters: ``layers`` (LightGCN's, 3), ``kg_init_scale`` (entity vectors start at this many
    times the ID embeddings' spread, 1.0), ``relation_init`` (the relation weights' start, 1.0; at 0
    the model stays LightGCN: the knowledge term is quadratic in them, so its gradient is zero there),
    ``knowledge_dropout`` (the share of facts left out of each training pass, 0.0; evaluation and
    serving use every fact).

    Cost per forward pass: LightGCN's, plus one gather-and-add over the facts and one sparse
    product over the training pairs: ``O((facts + pairs) x dim)`` time, ``O((facts + items) x dim)``
    memory, whatever the number of relations (a relations x entities table of typed entity vectors
    would grow with both: 24 rows per entity on ml-100k's Freebase KG). Like LightGCN's ID tables,
    the entity table trains dense: Adam updates all ``entities x dim`` of it every batch (graph
    models take few batches per epoch, ``recommender.graph_batches_per_epoch``).
    """

    needs_kg = True
    key = "kg_hybrid"

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
        item_entity_relations: np.ndarray | None = None,
        layers: int = 3,
        kg_init_scale: float = 1.0,
        relation_init: float = 1.0,
        knowledge_dropout: float = 0.0,
        init: str = "normal",
        **kwargs: Any,
    ) -> None:
        super().__init__(n_users, n_items, dim, train_pairs=train_pairs, layers=layers, init=init, **kwargs)
        del kg_vectors, kg_mask  # the item's own PyKEEN vector is not used: its facts are
        if not 0.0 <= knowledge_dropout < 1.0:
            raise ValueError(f"kg_hybrid: knowledge_dropout must be in [0, 1), got {knowledge_dropout}")
        self.knowledge_dropout = float(knowledge_dropout)
        facts = item_entity_facts(item_entity_edges, item_entity_relations)
        self.n_entities = int(entity_vectors.shape[0])
        n_relations = int(facts[:, 2].max()) + 1 if len(facts) else 1
        self.dim = dim
        # entity vectors come in at the spread of the ID embeddings (0.1 with the normal init)
        size = init_std(n_items, dim, init) * kg_init_scale
        self.entity = nn.Embedding(max(1, self.n_entities), dim)
        with torch.no_grad():
            if self.n_entities:
                self.entity.weight.copy_(kg_projection(entity_vectors, dim, size))
        self.relation = nn.Parameter(torch.full((n_relations, dim), float(relation_init)))
        # one row per distinct fact, weighted 1 / (the item's facts): the item's mean is an index_add
        facts = np.unique(facts, axis=0)
        per_item = np.bincount(facts[:, 0], minlength=n_items).astype(np.float32)
        self.register_buffer("fact_item", torch.as_tensor(facts[:, 0].copy()))
        self.register_buffer("fact_entity", torch.as_tensor(facts[:, 1].copy()))
        self.register_buffer("fact_relation", torch.as_tensor(facts[:, 2].copy()))
        self.register_buffer(
            "fact_weight",
            torch.as_tensor(1.0 / per_item[facts[:, 0]] if len(facts) else np.zeros(0, np.float32)),
        )
        self.n_items = n_items
        pairs = np.unique(np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2), axis=0)
        self.register_buffer("user_items", _row_mean_matrix(pairs[:, 0], pairs[:, 1], (n_users, n_items)))
        self.register_buffer(
            "user_degree", torch.as_tensor(np.bincount(pairs[:, 0], minlength=n_users), dtype=torch.float32)
        )

    def knowledge(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The knowledge channel: user vectors ``q`` (n_users, dim) and item vectors ``k`` (n_items, dim)."""
        message = (
            self.entity.weight[self.get_buffer("fact_entity")]
            * self.relation[self.get_buffer("fact_relation")]
        )
        fact_item, weight = self.get_buffer("fact_item"), self.get_buffer("fact_weight")
        if self.training and self.knowledge_dropout > 0 and len(weight):
            # each forward pass in training sees each fact with probability 1 - p, the item's
            # vector the mean over the facts kept (a KG-edge dropout, as KG contrastive models use)
            keep = (torch.rand(weight.shape, device=weight.device) >= self.knowledge_dropout).to(weight.dtype)
            kept = torch.zeros(self.n_items, dtype=weight.dtype, device=weight.device).index_add(
                0, fact_item, keep
            )
            weight = keep / kept[fact_item].clamp_min(1.0)
        k = torch.zeros(self.n_items, self.dim, dtype=message.dtype, device=message.device).index_add(
            0, fact_item, message * weight.unsqueeze(-1)
        )
        q = torch.sparse.mm(self.get_buffer("user_items"), k)
        return q, k

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = super().representations()
        q, k = self.knowledge()
        return torch.cat([users, q], 1), torch.cat([items, k], 1)

    def bpr_terms(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """BPR with the positive left out of its user's knowledge vector: ``q_u`` averages the user's
        training items, the positive among them, and ``q_u . k_pos`` would reward an item for being
        similar to itself (a shortcut that never holds for a held-out item). The positive is scored
        against ``(n_u q_u - k_pos) / (n_u - 1)`` (zero for a user with one item), as FISM does."""
        u_all, i_all = self.representations()
        d = self.dim
        u, ip, ineg = u_all[users], i_all[pos], i_all[neg]
        n = self.get_buffer("user_degree")[users].unsqueeze(-1)
        q, k_pos = u[:, d:], ip[:, d:]
        q_pos = torch.where(n > 1, (n * q - k_pos) / (n - 1).clamp_min(1), torch.zeros_like(q))
        pos_score = (u[:, :d] * ip[:, :d]).sum(-1) + (q_pos * k_pos).sum(-1)
        neg_score = (u * ineg).sum(-1)
        reg = self.regularised(users, pos, neg, u_all, i_all)
        return -nn.functional.logsigmoid(pos_score - neg_score).mean(), reg

    def regularised(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, u: torch.Tensor, i: torch.Tensor
    ) -> torch.Tensor:
        """LightGCN's term on the layer-0 rows, plus the batch's knowledge vectors."""
        d = self.dim
        kg = u[users, d:].pow(2).sum() + i[pos, d:].pow(2).sum() + i[neg, d:].pow(2).sum()
        return super().regularised(users, pos, neg, u, i) + kg / users.shape[0]


def segment_softmax(scores: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Softmax of ``scores`` within each group of equal ``index`` (edges of one head node)."""
    top = torch.full((n,), -torch.inf, device=scores.device, dtype=scores.dtype)
    top = top.scatter_reduce(0, index, scores.detach(), reduce="amax", include_self=True)
    ex = torch.exp(scores - top[index])
    total = torch.zeros(n, device=scores.device, dtype=scores.dtype).index_add(0, index, ex)
    return ex / total[index].clamp_min(1e-12)


class KGAT(KGLightGCN):
    """Relation-aware attentive propagation over the collaborative KG (KGAT-like; Wang et al., 2019).

    Users, items and entities form one graph whose edges carry a relation: ``interacts``
    (user -> item), its inverse, and every KG relation and its inverse (item <-> entity).
    Each edge ``(h, r, t)`` is weighted by KGAT's attention
    ``pi(h, r, t) = (W e_t)^T tanh(W e_h + e_r)``, normalised by a softmax over the edges
    of ``h``, so a node learns how much to listen to its users, its director, its genres...
    Embeddings are then propagated ``layers`` times over the attentive adjacency and the
    layer outputs averaged.

    Differences from the published KGAT, chosen for cost and stability: one projection
    ``W`` shared by all relations (relations differ by ``e_r``) instead of a matrix per
    relation; attention computed once per forward pass from the layer-0 embeddings (as
    KGAT does) but learned end to end from the BPR loss instead of an alternating TransR
    phase; LightGCN's linear aggregator (layer mean) instead of the bi-interaction one.
    Item and entity embeddings start from the PyKEEN vectors, as in ``kg_lightgcn``.

    Cost per forward pass: ``O(edges x dim)`` time and memory (sparse products over the
    edge list, never a dense node x node or batch x entity block).
    """

    key = "kgat"

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
        item_entity_relations: np.ndarray | None = None,
        layers: int = 2,
        kg_init_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            n_users,
            n_items,
            dim,
            train_pairs=train_pairs,
            kg_vectors=kg_vectors,
            kg_mask=kg_mask,
            entity_vectors=entity_vectors,
            item_entity_edges=item_entity_edges,
            layers=layers,
            kg_init_scale=kg_init_scale,
            **kwargs,
        )
        facts = item_entity_facts(item_entity_edges, item_entity_relations)
        n_kg_relations = int(facts[:, 2].max()) + 1 if len(facts) else 0
        pairs = np.unique(np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2), axis=0)
        users, items = pairs[:, 0], pairs[:, 1] + n_users
        f_items, f_entities = facts[:, 0] + n_users, facts[:, 1] + n_users + n_items
        heads = np.concatenate([users, items, f_items, f_entities])
        tails = np.concatenate([items, users, f_entities, f_items])
        relations = np.concatenate(
            [
                np.zeros(len(pairs), np.int64),
                np.ones(len(pairs), np.int64),
                2 + 2 * facts[:, 2],
                3 + 2 * facts[:, 2],
            ]
        )
        order = np.lexsort((relations, tails, heads))  # sorted by head, then tail: a coalesced layout
        self.n_nodes = n_users + n_items + self.n_entities
        heads, tails, relations = heads[order], tails[order], relations[order]
        # tanh(W e_h + e_r) depends on (head, relation) only: computed once per distinct pair
        pairs_hr, edge_pair = np.unique(np.stack([heads, relations], axis=1), axis=0, return_inverse=True)
        self.register_buffer("edge_head", torch.as_tensor(heads))
        self.register_buffer("edge_tail", torch.as_tensor(tails))
        self.register_buffer("edge_pair", torch.as_tensor(edge_pair.reshape(-1)))
        self.register_buffer("pair_head", torch.as_tensor(pairs_hr[:, 0].copy()))
        self.register_buffer("pair_relation", torch.as_tensor(pairs_hr[:, 1].copy()))
        self.relation = nn.Embedding(2 + 2 * n_kg_relations, dim)
        nn.init.normal_(self.relation.weight, std=0.1)
        self.attention = nn.Linear(dim, dim, bias=False)
        nn.init.xavier_uniform_(self.attention.weight)

    def attention_weights(self, ego: torch.Tensor) -> torch.Tensor:
        """Softmax-normalised attention of every edge (aligned with the ``edge_*`` buffers)."""
        projected = self.attention(ego)
        query = torch.tanh(
            projected[self.get_buffer("pair_head")] + self.relation(self.get_buffer("pair_relation"))
        )
        scores = (projected[self.get_buffer("edge_tail")] * query[self.get_buffer("edge_pair")]).sum(-1)
        return segment_softmax(scores, self.get_buffer("edge_head"), self.n_nodes)

    def propagate(self, ego: torch.Tensor) -> torch.Tensor:
        head, tail = self.get_buffer("edge_head"), self.get_buffer("edge_tail")
        weights = self.attention_weights(ego).unsqueeze(-1)
        out, h = ego, ego
        for _ in range(self.layers):
            h = torch.zeros_like(h).index_add(0, head, weights * h[tail])
            out = out + h
        return out / (self.layers + 1)


#: blend weights tried for each neighbourhood term, on validation, after training
KNN_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5)


class LightGCNKNN(LightGCN):
    """LightGCN plus an item-neighbourhood (ItemKNN) term, blended after training.

    LightGCN trains as ``lightgcn`` does (same seed, same weights, same early stopping). Then the
    score becomes ``c_u.c_i / s_c(u) + w kn(u, i) / s(u)`` (:mod:`kg_enhance.rec.neighbours`):
    ``kn`` the user's mean cosine to ``i`` over its training items, each item keeping its
    ``neighbours`` most similar items by the users they share; the spreads ``s`` are per user over
    the catalog. ``w`` is chosen from ``cf_weights`` by validation NDCG@K (:meth:`choose_blend`),
    never on test; 0 keeps LightGCN's ranking. Parameters: LightGCN's, plus ``neighbours`` (100),
    ``cf_weights`` (0, 0.1, 0.2, 0.3, 0.5), ``max_feature_items`` (users with more training items
    are left out of the similarity, which keeps building it linear in the pairs: 5000; the largest
    user of ml-latest-small has 981).

    This is the no-knowledge control of ``kg_knn``: a blend of two collaborative models, which on
    its own moves NDCG, so the knowledge term is measured against it, not against LightGCN.
    """

    key = "lightgcn_knn"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        *,
        train_pairs: np.ndarray,
        neighbours: int = 100,
        cf_weights: tuple[float, ...] | list[float] = KNN_WEIGHTS,
        max_feature_items: int | None = 5000,
        **kwargs: Any,
    ) -> None:
        super().__init__(n_users, n_items, dim, train_pairs=train_pairs, **kwargs)
        if int(neighbours) < 1:
            raise ValueError(f"{self.key}: neighbours must be at least 1, got {neighbours}")
        self.neighbours = int(neighbours)
        self.profiles = user_profiles(train_pairs, n_users, n_items)
        self.terms: dict[str, Any] = {
            "cf": item_knn(
                collaborative_features(train_pairs, n_users, n_items),
                k=int(neighbours),
                idf=False,
                max_feature_items=max_feature_items,
            )
        }
        self.grids: dict[str, tuple[float, ...]] = {"cf": self._grid("cf_weights", cf_weights)}
        self._spreads: dict[str, np.ndarray] = {}
        # the chosen weight per term, in the order of ``terms`` (a buffer, so saved with the
        # weights; 0 until :meth:`choose_blend`)
        self.register_buffer("blend_weights", torch.zeros(len(self.terms)))

    @property
    def blend(self) -> dict[str, float]:
        """The weight of each neighbourhood term."""
        return {
            n: float(w) for n, w in zip(self.terms, self.get_buffer("blend_weights").tolist(), strict=True)
        }

    @blend.setter
    def blend(self, weights: dict[str, float]) -> None:
        device = self.get_buffer("blend_weights").device
        self.blend_weights = torch.tensor([float(weights.get(n, 0.0)) for n in self.terms], device=device)

    def _grid(self, name: str, values: Any) -> tuple[float, ...]:
        try:
            grid = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise ValueError(
                f"{self.key}: {name} must be a non-empty list of weights >= 0, got {values!r}"
            ) from None
        if not grid or any(v < 0 for v in grid):
            raise ValueError(f"{self.key}: {name} must be a non-empty list of weights >= 0, got {values}")
        return grid

    def extra_scores(self) -> NeighbourScores | None:
        """The neighbourhood terms at the chosen weights (None while every weight is 0)."""
        if not any(self.blend.values()):
            return None
        for name, sim in self.terms.items():  # once per model: they depend on the data only
            if name not in self._spreads:
                self._spreads[name] = term_spread(self.profiles, sim)
        return NeighbourScores(
            self.profiles,
            list(self.terms.values()),
            [self.blend[n] for n in self.terms],
            [self._spreads[n] for n in self.terms],
        )

    def choose_blend(self, validation: Callable[[], float]) -> dict[str, Any]:
        """Try every combination of the weight grids, keep the best ``validation()`` (NDCG@K on the
        validation split, at the weights set); ties go to the first tried (smaller weights)."""
        import itertools

        names = list(self.terms)
        tried: list[dict[str, Any]] = []
        best: tuple[float, dict[str, float]] | None = None
        for values in itertools.product(*(self.grids[n] for n in names)):
            weights = dict(zip(names, values, strict=True))
            self.blend = weights
            score = float(validation())
            tried.append({**weights, "valid": score})
            if best is None or score > best[0]:
                best = (score, weights)
        assert best is not None
        self.blend = best[1]
        return {"chosen": dict(best[1]), "valid": best[0], "tried": tried}


class KGKNN(LightGCNKNN):
    """``lightgcn_knn`` plus a knowledge neighbourhood: a second item-kNN term whose similarity is
    the cosine of the items' idf-weighted ``(relation, entity)`` facts, so an item shares
    neighbours with items of the same director or theme whatever their interactions.

    Both weights are chosen together on validation (``cf_weights`` x ``kg_weights``, 0 included, so
    validation can fall back to ``lightgcn_knn``). With the same seed, the LightGCN inside trains
    exactly as in ``lightgcn_knn`` and ``lightgcn``: the difference between the two blends is the
    knowledge term alone. Parameters: ``lightgcn_knn``'s, plus ``kg_weights`` (0, 0.1, 0.2, 0.3, 0.5),
    ``kg_max_feature_items`` (facts shared by more items, such as a genre of thousands, are left
    out of the similarity: 1000 by default, which keeps building it linear in the facts) and
    ``kg_relations`` (the relation types whose facts make the similarity; all by default).
    """

    needs_kg = True
    key = "kg_knn"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        *,
        train_pairs: np.ndarray,
        item_entity_edges: np.ndarray,
        item_entity_relations: np.ndarray | None = None,
        kg_weights: tuple[float, ...] | list[float] = KNN_WEIGHTS,
        kg_max_feature_items: int | None = 1000,
        kg_relations: list[str] | None = None,
        relation_keys: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        # the PyKEEN vectors among ``kwargs`` go unused (RecModel ignores them): the facts are the features
        super().__init__(n_users, n_items, dim, train_pairs=train_pairs, **kwargs)
        facts = item_entity_facts(item_entity_edges, item_entity_relations)
        if kg_relations is not None:
            known = list(relation_keys or [])
            unknown = sorted(set(kg_relations) - set(known))
            if unknown:
                raise ValueError(
                    f"{self.key}: kg_relations {unknown} are not relations of this KG; it has {known}"
                )
            facts = facts[np.isin(facts[:, 2], [known.index(r) for r in kg_relations])]
        self.terms["kg"] = item_knn(
            knowledge_features(facts, n_items),
            k=self.neighbours,
            idf=True,
            max_feature_items=kg_max_feature_items,
        )
        self.grids["kg"] = self._grid("kg_weights", kg_weights)
        self.blend = {}


rec_model_resolver: ClassResolver[RecModel] = ClassResolver(
    [BPRMF, LightGCN, KGBPR, KGLightGCN, KGHybrid, KGAT, LightGCNKNN, KGKNN], base=RecModel
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
