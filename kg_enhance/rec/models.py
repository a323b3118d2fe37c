"""Recommender models in torch, behind one registry (class-resolver).

* ``bpr_mf``: matrix factorisation trained with BPR (the no-KG baseline).
* ``kg_bpr``: BPR-MF whose item vectors are fused with the PyKEEN item vectors
  through a learned per-dimension gate; KG vectors are frozen by default.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from class_resolver import ClassResolver
from torch import nn


class RecModel(nn.Module):
    """Base class: ``user_repr`` / ``item_repr`` give the vectors a dot product scores."""

    needs_kg: ClassVar[bool] = False
    #: the name used in job files (the resolver also accepts the class name)
    key: ClassVar[str] = ""

    def __init__(self, n_users: int, n_items: int, dim: int, **_: Any) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)

    def item_repr(self) -> torch.Tensor:
        return self.item.weight

    def user_repr(self) -> torch.Tensor:
        return self.user.weight

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_repr()[users] @ self.item_repr().T

    def bpr_terms(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.user_repr()[users]
        items = self.item_repr()
        ip, ineg = items[pos], items[neg]
        diff = (u * ip).sum(-1) - (u * ineg).sum(-1)
        reg = (u.pow(2).sum() + ip.pow(2).sum() + ineg.pow(2).sum()) / users.shape[0]
        return -nn.functional.logsigmoid(diff).mean(), reg


class BPRMF(RecModel):
    """Plain matrix factorisation with the BPR pairwise loss (Rendle et al., 2009)."""

    key = "bpr_mf"


class KGBPR(RecModel):
    """BPR-MF with item vectors fused with KG embeddings through a learned gate.

    ``item = e_i + sigmoid(g) * (W kg_i)``, where ``kg_i`` is the PyKEEN vector of
    the item (zero and masked out for items absent from the KG).
    """

    needs_kg = True
    key = "kg_bpr"

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
        self.kg = nn.Embedding.from_pretrained(kg_vectors.float(), freeze=freeze_kg)
        self.register_buffer("kg_mask", kg_mask.float().unsqueeze(-1))
        self.proj = nn.Linear(kg_vectors.shape[1], dim, bias=False)
        nn.init.xavier_uniform_(self.proj.weight, gain=0.5)
        self.gate = nn.Parameter(torch.zeros(dim))

    def item_repr(self) -> torch.Tensor:
        kg = self.proj(self.kg.weight) * self.kg_mask
        return self.item.weight + torch.sigmoid(self.gate) * kg


rec_model_resolver: ClassResolver[RecModel] = ClassResolver([BPRMF, KGBPR], base=RecModel)


def model_keys() -> list[str]:
    return sorted(cls.key for cls in rec_model_resolver)


def check_model_type(name: str) -> str:
    try:
        rec_model_resolver.lookup(name)
    except (KeyError, ValueError):
        valid = ", ".join(model_keys())
        raise ValueError(f"unknown recommender type {name!r}; valid types: {valid}") from None
    return name
