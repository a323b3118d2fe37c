"""KG embedding artifacts: the one :class:`Embeddings` type, written and read here.

The embed stage trains an :class:`Embeddings` (:func:`kg_enhance.kge.train.train_kge`)
and saves it as a version folder (:func:`save_embeddings`); ``kg_enhance.load_embeddings``
reads one back (:func:`load_embeddings_dir`).

The LLM text vectors of the ``embed_text`` stage live next to them as
:class:`TextEmbeddings` (``text_embeddings/``: ``item_vectors.npy`` + ``item_ids.json``,
``user_*`` when users are embedded, ``metadata.json`` written last), read back by
:func:`load_text_embeddings`.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kg_enhance.errors import StageError
from kg_enhance.io.files import write_json, write_npy, write_text
from kg_enhance.names import ITEM, anchor_of

logger = logging.getLogger(__name__)


@dataclass
class Embeddings:
    """KG embeddings with their id maps and metadata."""

    entity_vectors: np.ndarray
    entity_to_id: dict[str, int]
    relation_vectors: np.ndarray
    relation_to_id: dict[str, int]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: ``kge.split: hash``: sorted hash keys of the triples forced into training (kept there by the
    #: next warm start, so no carried vector was trained on a held-out triple); None otherwise
    forced_keys: np.ndarray | None = None

    @property
    def metrics(self) -> dict[str, float | None]:
        """Held-out KGE metrics (``mrr``, ``hits@k``); ``None`` values when nothing was held out."""
        return dict(self.metadata.get("metrics") or {})

    @property
    def dim(self) -> int:
        return int(self.entity_vectors.shape[1])

    def vector(self, label: str) -> np.ndarray:
        return np.asarray(self.entity_vectors[self.entity_to_id[label]])

    def item_vectors(self) -> tuple[list[str], np.ndarray]:
        """Item ids and their rows, for items present in the KG."""
        pairs = sorted(
            (item_id, idx)
            for label, idx in self.entity_to_id.items()
            if (item_id := anchor_of(label, ITEM)) is not None
        )
        ids = [p[0] for p in pairs]
        rows = np.asarray([p[1] for p in pairs], dtype=np.int64)
        return ids, self.entity_vectors[rows] if len(rows) else np.zeros(
            (0, self.entity_vectors.shape[1]), np.float32
        )

    def to_pandas(self) -> pd.DataFrame:
        labels = sorted(self.entity_to_id, key=self.entity_to_id.__getitem__)
        df = pd.DataFrame(self.entity_vectors, index=pd.Index(labels, name="label"))
        df.columns = [f"d{i}" for i in range(df.shape[1])]
        return df

    def to_torch(self) -> torch.Tensor:
        return torch.from_numpy(self.entity_vectors)


LATEST = "LATEST"
#: the hash split's forced-training keys (:attr:`Embeddings.forced_keys`)
FORCED = "split_forced_keys.npy"
KEEP_VERSIONS = 5


def embeddings_dir(path: Path, *, version: str | None = None) -> Path:
    """Resolve a run directory (``outputs.dir``), its ``embeddings/`` folder, or one version folder.

    Versions live in ``embeddings/<run_id>/``; ``embeddings/LATEST`` names the newest. A
    missing or unreadable ``LATEST``, or one naming an incomplete version, falls back to
    the newest complete version with a warning: a crash between writing a version and
    moving ``LATEST`` never hides the vectors.
    """
    path = Path(path)
    if (path / "entity_vectors.npy").exists() and version is None:
        return path
    root = (
        path
        if (path / LATEST).exists() or (path.name == "embeddings" and path.is_dir())
        else path / "embeddings"
    )
    complete = versions(root)
    if version is not None:
        if version in complete:
            return root / version
        raise StageError(
            f"{root}: no complete embeddings version {version!r}; versions: {', '.join(complete) or 'none'}"
        )
    named, problem = _read_latest(root)
    if named is not None and named in complete:
        return root / named
    if complete:
        logger.warning("%s: %s; using the newest complete version %s", root / LATEST, problem, complete[-1])
        return root / complete[-1]
    if (root / "entity_vectors.npy").exists():
        return root
    raise StageError(
        f"{path}: no embeddings found (expected embeddings/LATEST and a version folder); run the embed stage first"
    )


def _read_latest(root: Path) -> tuple[str | None, str]:
    """The version ``LATEST`` names, or ``None`` with what is wrong with it."""
    try:
        text = (root / LATEST).read_bytes()[:256].decode("utf-8").strip()
    except FileNotFoundError:
        return None, "is missing"
    except (OSError, UnicodeDecodeError):
        return None, "is unreadable"
    if not text or "/" in text or "\\" in text or text.startswith("."):
        return None, f"does not name a version ({text[:40]!r})"
    if not (root / text / "metadata.json").exists():
        return text, f"names {text!r}, which is missing or incomplete"
    return text, ""


def versions(root: Path) -> list[str]:
    """Complete embedding versions under an ``embeddings/`` folder, oldest first.

    A version is complete when its ``metadata.json`` exists: it is written after the vectors.
    """
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "metadata.json").exists())


def load_embeddings_dir(
    path: Path, *, expected_fingerprint: str | None = None, version: str | None = None
) -> Embeddings:
    """Read one version; every unreadable or inconsistent file is a one-line :class:`StageError`."""
    folder = embeddings_dir(path, version=version)

    def corrupt(name: str, why: str) -> StageError:
        others = ", ".join(v for v in versions(folder.parent) if v != folder.name) or "none"
        return StageError(
            f"{folder / name}: corrupt embeddings artifact ({why}); re-run the embed stage "
            f"(`kg-enhance run JOB --only embed`) or load another version with version= (others: {others})"
        )

    def read_json(name: str) -> Any:
        try:
            return json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise corrupt(name, type(e).__name__) from None

    def read_npy(name: str) -> np.ndarray:
        try:
            return np.asarray(np.load(folder / name, allow_pickle=False))
        except (OSError, ValueError, EOFError) as e:
            raise corrupt(
                name, f"{type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else 'unreadable'}"
            ) from None

    meta = read_json("metadata.json")
    if not isinstance(meta, dict):
        raise corrupt("metadata.json", "not a JSON object")
    if expected_fingerprint is not None and meta.get("graph_fingerprint") != expected_fingerprint:
        raise StageError(
            f"{folder}: embeddings were trained on graph {meta.get('graph_fingerprint')} but the graph is now "
            f"{expected_fingerprint}; re-run the embed stage (`kg-enhance run JOB --only embed`)"
        )
    emb = Embeddings(
        entity_vectors=read_npy("entity_vectors.npy"),
        entity_to_id=read_json("entity_to_id.json"),
        relation_vectors=read_npy("relation_vectors.npy"),
        relation_to_id=read_json("relation_to_id.json"),
        metadata=meta,
        forced_keys=read_npy(FORCED) if (folder / FORCED).exists() else None,
    )
    for name, ids, vectors in (
        ("entity_to_id.json", emb.entity_to_id, emb.entity_vectors),
        ("relation_to_id.json", emb.relation_to_id, emb.relation_vectors),
    ):
        if not isinstance(ids, dict) or vectors.ndim != 2 or len(ids) != vectors.shape[0]:
            raise corrupt(
                name, f"{len(ids) if isinstance(ids, dict) else '?'} ids for {vectors.shape} vectors"
            )
    return emb


def save_embeddings(emb: Embeddings, root: Path, *, version: str) -> Path:
    """Write version ``root/<version>/`` (vectors, id maps, ``metadata.json``) and point ``root/LATEST`` at it.

    Every file is written atomically; ``LATEST`` moves last, so a reader sees the old
    version or the complete new one. The newest :data:`KEEP_VERSIONS` versions are kept.
    """
    out_dir = root / version
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (
        "entity_vectors.npy",
        "relation_vectors.npy",
        "entity_to_id.json",
        "relation_to_id.json",
        "metadata.json",
    ):
        (root / stale).unlink(missing_ok=True)  # the flat layout of format version 1
    write_npy(out_dir / "entity_vectors.npy", emb.entity_vectors)
    write_npy(out_dir / "relation_vectors.npy", emb.relation_vectors)
    write_json(out_dir / "entity_to_id.json", emb.entity_to_id, indent=0)
    write_json(out_dir / "relation_to_id.json", emb.relation_to_id, indent=0)
    if emb.forced_keys is not None:
        write_npy(out_dir / FORCED, emb.forced_keys)
    write_json(out_dir / "metadata.json", {**emb.metadata, "version": version, "format_version": 2})
    write_text(root / LATEST, version)
    for old in versions(root)[:-KEEP_VERSIONS]:
        shutil.rmtree(root / old, ignore_errors=True)
    return out_dir


@dataclass
class TextEmbeddings:
    """LLM text vectors of items (and users), row ``n`` belonging to ``item_ids[n]``."""

    item_ids: list[str]
    item_vectors: np.ndarray
    user_ids: list[str] = field(default_factory=list)
    user_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1]) if self.item_vectors.ndim == 2 else 0

    def aligned(self, item_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, mask)`` in the order of ``item_ids``: zero rows and mask 0 where an item has no vector."""
        row = {item_id: n for n, item_id in enumerate(self.item_ids)}
        take = np.asarray([row.get(i, -1) for i in item_ids], dtype=np.int64)
        out = np.zeros((len(item_ids), self.dim), dtype=np.float32)
        mask = take >= 0
        out[mask] = self.item_vectors[take[mask]]
        return out, mask.astype(np.float32)


TEXT_FILES = ("item_vectors.npy", "item_ids.json", "user_vectors.npy", "user_ids.json", "metadata.json")


def save_text_embeddings(text: TextEmbeddings, folder: Path) -> Path:
    """Write ``folder/`` (vectors, ids, then ``metadata.json``); users' files only when users were embedded."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.json").unlink(missing_ok=True)  # incomplete until written again
    write_npy(folder / "item_vectors.npy", text.item_vectors.astype(np.float32))
    write_json(folder / "item_ids.json", text.item_ids, indent=None)
    if text.user_ids:
        write_npy(folder / "user_vectors.npy", text.user_vectors.astype(np.float32))
        write_json(folder / "user_ids.json", text.user_ids, indent=None)
    else:
        (folder / "user_vectors.npy").unlink(missing_ok=True)
        (folder / "user_ids.json").unlink(missing_ok=True)
    write_json(folder / "metadata.json", {**text.metadata, "dim": text.dim, "format_version": 1})
    return folder


def load_text_embeddings(run_root: Path) -> TextEmbeddings:
    """The run's ``text_embeddings/``; a missing or damaged artifact is a one-line :class:`StageError`."""
    folder = Path(run_root) / "text_embeddings"
    if not (folder / "metadata.json").exists():
        raise StageError(
            f"{folder}: no text embeddings; enable text_embeddings and run `kg-enhance run JOB --only embed_text`"
        )
    try:
        meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        ids = json.loads((folder / "item_ids.json").read_text(encoding="utf-8"))
        vectors = np.asarray(np.load(folder / "item_vectors.npy", allow_pickle=False))
        user_ids: list[str] = []
        users = np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), np.float32)
        if (folder / "user_ids.json").exists():
            user_ids = json.loads((folder / "user_ids.json").read_text(encoding="utf-8"))
            users = np.asarray(np.load(folder / "user_vectors.npy", allow_pickle=False))
    except (OSError, ValueError, EOFError) as e:
        raise StageError(
            f"{folder}: corrupt text embeddings ({type(e).__name__}); re-run `kg-enhance run JOB --only embed_text`"
        ) from None
    if vectors.ndim != 2 or len(ids) != vectors.shape[0] or len(user_ids) != users.shape[0]:
        raise StageError(
            f"{folder}: corrupt text embeddings ({len(ids)} ids for {vectors.shape} vectors); "
            "re-run `kg-enhance run JOB --only embed_text`"
        )
    return TextEmbeddings(
        item_ids=[str(i) for i in ids],
        item_vectors=vectors.astype(np.float32),
        user_ids=[str(u) for u in user_ids],
        user_vectors=users.astype(np.float32),
        metadata=meta,
    )
