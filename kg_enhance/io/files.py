"""Crash-consistent file writes: every artifact goes to a temporary name, then is renamed.

A reader never sees half a file: it sees the old version or the new one. The
temporary file lives in the target's folder (so the rename stays on one file
system) and is removed when the write fails. Files are created private (0600,
``mkstemp``'s mode): run folders may hold raw LLM answers and catalog text.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path``; renamed onto ``path`` when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_with(path: Path, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp)`` (e.g. ``np.save``, ``df.to_parquet``) and rename the result onto ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return path


def write_npy(path: Path, array: Any) -> Path:
    """``np.save`` through a file handle (given a path, numpy would append ``.npy`` to the temporary name)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array)

    return write_with(path, write)


def write_text(path: Path, text: str) -> Path:
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, value: Any, *, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(value, indent=indent, ensure_ascii=False, default=str))


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    return write_with(path, write)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
