"""What text-fused recommenders receive: one standardised LLM text vector per split item.

LLM embeddings are anisotropic (a large shared mean and a few dimensions with huge
variance), so the raw vectors would mostly add the same direction to every item. Each
dimension is centred and scaled to unit variance over the items that have text
(statistics of the catalog's text only, no interactions: nothing leaks from the test
split); items without text get a zero row and mask 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kg_enhance.kge.artifacts import TextEmbeddings
from kg_enhance.rec.data import Split


@dataclass
class TextInputs:
    #: (n_items, d) standardised text vectors in split item order; zero rows where an item has no text
    item_vectors: torch.Tensor
    #: (n_items,) 1.0 where the item has a text vector
    item_mask: torch.Tensor

    @property
    def coverage(self) -> float:
        return float(self.item_mask.mean()) if len(self.item_mask) else 0.0

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1])

    def model_kwargs(self) -> dict[str, object]:
        return {"text_vectors": self.item_vectors, "text_mask": self.item_mask}


def standardise(vectors: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Centre and scale each dimension over the rows where ``mask`` is set; other rows become zero."""
    out = np.zeros_like(vectors, dtype=np.float32)
    rows = mask > 0
    if rows.any():
        present = vectors[rows].astype(np.float64)
        mean = present.mean(axis=0)
        std = present.std(axis=0)
        std[std < 1e-8] = 1.0
        out[rows] = ((present - mean) / std).astype(np.float32)
    return out


def build_text_inputs(text: TextEmbeddings, split: Split) -> TextInputs:
    """Align the run's text vectors with the split's item rows and standardise them."""
    vectors, mask = text.aligned(list(split.item_ids))
    return TextInputs(
        item_vectors=torch.from_numpy(standardise(vectors, mask)),
        item_mask=torch.from_numpy(mask.astype(np.float32)),
    )
