"""Reading embedding artifacts back: the object behind ``kg_enhance.load_embeddings``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kg_enhance.errors import StageError


@dataclass
class Embeddings:
    """KG embeddings with their id maps and metadata."""

    entity_vectors: np.ndarray
    entity_to_id: dict[str, int]
    relation_vectors: np.ndarray
    relation_to_id: dict[str, int]
    metadata: dict[str, Any]

    def vector(self, label: str) -> np.ndarray:
        return self.entity_vectors[self.entity_to_id[label]]

    def item_vectors(self) -> tuple[list[str], np.ndarray]:
        """Item ids and their rows, for items present in the KG."""
        pairs = sorted(
            (label[5:], idx) for label, idx in self.entity_to_id.items() if label.startswith("item:")
        )
        ids = [p[0] for p in pairs]
        rows = np.asarray([p[1] for p in pairs], dtype=np.int64)
        return ids, self.entity_vectors[rows] if len(rows) else np.zeros(
            (0, self.entity_vectors.shape[1]), np.float32
        )

    def to_pandas(self) -> Any:
        import pandas as pd

        labels = sorted(self.entity_to_id, key=self.entity_to_id.__getitem__)
        df = pd.DataFrame(self.entity_vectors, index=pd.Index(labels, name="label"))
        df.columns = [f"d{i}" for i in range(df.shape[1])]
        return df

    def to_torch(self) -> Any:
        import torch

        return torch.from_numpy(self.entity_vectors)


LATEST = "LATEST"
KEEP_VERSIONS = 5


def embeddings_dir(path: Path, *, version: str | None = None) -> Path:
    """Resolve a run directory (``outputs.dir``), its ``embeddings/`` folder, or one version folder.

    Versions live in ``embeddings/<run_id>/``; ``embeddings/LATEST`` names the newest.
    """
    path = Path(path)
    if (path / "entity_vectors.npy").exists() and version is None:
        return path
    root = path if (path / LATEST).exists() else path / "embeddings"
    if version is not None:
        if (root / version / "entity_vectors.npy").exists():
            return root / version
        known = ", ".join(versions(root)) or "none"
        raise StageError(f"{root}: no embeddings version {version!r}; versions: {known}")
    if (root / LATEST).exists():
        latest = root / (root / LATEST).read_text().strip()
        if (latest / "entity_vectors.npy").exists():
            return latest
    if (root / "entity_vectors.npy").exists():
        return root
    raise StageError(
        f"{path}: no embeddings found (expected embeddings/LATEST and a version folder); run the embed stage first"
    )


def versions(root: Path) -> list[str]:
    """Embedding versions under an ``embeddings/`` folder, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "metadata.json").exists())


def load_embeddings_dir(
    path: Path, *, expected_fingerprint: str | None = None, version: str | None = None
) -> Embeddings:
    folder = embeddings_dir(path, version=version)
    meta = json.loads((folder / "metadata.json").read_text())
    if expected_fingerprint is not None and meta.get("graph_fingerprint") != expected_fingerprint:
        raise StageError(
            f"{folder}: embeddings were trained on graph {meta.get('graph_fingerprint')} but the graph is now "
            f"{expected_fingerprint}; re-run the embed stage (`kg-enhance run JOB --only embed`)"
        )
    return Embeddings(
        entity_vectors=np.load(folder / "entity_vectors.npy"),
        entity_to_id=json.loads((folder / "entity_to_id.json").read_text()),
        relation_vectors=np.load(folder / "relation_vectors.npy"),
        relation_to_id=json.loads((folder / "relation_to_id.json").read_text()),
        metadata=meta,
    )
