"""Content-addressed cache of successful LLM extractions, in SQLite.

The key hashes everything that determines an answer: endpoint model, generation
parameters, structured-output mode, prompt template version, ontology, and the
item's text. Failures are never stored; API keys never are either.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from kg_enhance.paths import state_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS extraction (
    key TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    raw TEXT NOT NULL,
    facts TEXT NOT NULL,
    dropped TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS extraction_item ON extraction(item_id);
"""


def default_cache_path() -> Path:
    """The extraction cache every job on this machine shares (under the state folder)."""
    return state_dir() / "cache" / "extract.sqlite"


def cache_key(**parts: Any) -> str:
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ExtractionCache:
    """A small thread-safe SQLite store; one row per successfully extracted item version."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, raw, facts, dropped, prompt_tokens, completion_tokens, attempts "  # noqa: S608
                    f"FROM extraction WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for key, raw, facts, dropped, pt, ct, attempts in rows:
                    out[key] = {
                        "raw": raw,
                        "facts": json.loads(facts),
                        "dropped": json.loads(dropped),
                        "prompt_tokens": pt,
                        "completion_tokens": ct,
                        "attempts": attempts,
                    }
        return out

    def put(
        self,
        key: str,
        *,
        item_id: str,
        model: str,
        raw: str,
        facts: list[dict[str, Any]],
        dropped: list[str],
        prompt_tokens: int,
        completion_tokens: int,
        attempts: int,
    ) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO extraction VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    key,
                    item_id,
                    model,
                    time.time(),
                    raw,
                    json.dumps(facts, ensure_ascii=False),
                    json.dumps(dropped, ensure_ascii=False),
                    prompt_tokens,
                    completion_tokens,
                    attempts,
                ),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM extraction").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
