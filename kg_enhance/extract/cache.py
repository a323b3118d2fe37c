"""Content-addressed cache of LLM extractions, in SQLite.

The key hashes everything that determines an answer: the endpoint (base URL without
credentials), the model the server reports serving, generation parameters,
structured-output mode, prompt template version, ontology, and the subject's text.
Successful extractions are stored; so are quarantines (raw output and errors), which
a later run does not ask again unless told to. API keys are never stored.

The cache heals itself: a file SQLite cannot read (truncated, overwritten, ``database
disk image is malformed``, ``file is not a database``) is moved aside, with its
``-wal``/``-shm``, to ``<name>.corrupt-<timestamp>`` and an empty cache takes its place,
on open or when a later read or write meets the damage. A read that fails counts as a
miss and a write that fails is skipped, each with one warning, so a cache problem never
stops a run. The folder is created private (0700); the database file (and so its
``-wal``/``-shm``) is 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kg_enhance.paths import state_dir

logger = logging.getLogger(__name__)

T = TypeVar("T")

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
CREATE TABLE IF NOT EXISTS quarantine (
    key TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    raw TEXT,
    errors TEXT NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoint (
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    served TEXT NOT NULL,
    mode TEXT,
    seen REAL NOT NULL,
    PRIMARY KEY (endpoint, model)
);
"""

#: SQLite result codes that mean the file itself is damaged (not busy, not full)
_CORRUPT_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_CORRUPT_WORDS = ("malformed", "not a database", "corrupt")


def default_cache_path() -> Path:
    """The extraction cache every job on this machine shares (under the state folder)."""
    return state_dir() / "cache" / "extract.sqlite"


def cache_key(**parts: Any) -> str:
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def is_corruption(exc: BaseException) -> bool:
    """Whether a SQLite error says the database file is damaged (as opposed to locked, full, ...)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    name = getattr(exc, "sqlite_errorname", None)
    if name in _CORRUPT_CODES:
        return True
    text = str(exc).lower()
    return any(word in text for word in _CORRUPT_WORDS)


class _Corrupt(sqlite3.DatabaseError):
    """Internal: ``PRAGMA quick_check`` found damage that no statement has tripped over yet."""


@dataclass(frozen=True)
class EndpointRecord:
    """What an endpoint last reported serving for a configured model name (and its structured-output mode)."""

    endpoint: str
    model: str
    served: str
    mode: str | None
    seen: float


class ExtractionCache:
    """A small thread-safe SQLite store: one row per extracted or quarantined subject version."""

    #: the tables a cache file holds (subclasses add theirs)
    schema: str = SCHEMA

    def __init__(self, path: Path) -> None:
        self.path = path
        #: where damaged files were moved during this object's life (first the database, then -wal/-shm)
        self.moved_aside: list[Path] = []
        #: False when the file could not be used at all and the cache lives in memory for this run
        self.persistent = True
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        _private_folder(path.parent)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as e:
            if is_corruption(e):
                self._conn = self._heal(e, during="open")
            else:
                self._conn = self._in_memory(e, during="open")
        except OSError as e:  # the path is a folder, or the file cannot be created
            self._conn = self._in_memory(e, during="open")

    # -- opening and healing ------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        _private_file(self.path)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(self.schema)
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)").fetchall()]
            if problems != ["ok"]:
                raise _Corrupt("; ".join(str(p) for p in problems))
        except BaseException:
            conn.close()
            raise
        return conn

    def _heal(self, error: BaseException, *, during: str) -> sqlite3.Connection:
        """Move the damaged file (and its -wal/-shm) aside and start an empty cache in its place."""
        target = _aside_name(self.path)
        moved: list[Path] = []
        try:
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    dst = Path(f"{target}{suffix}")
                    os.replace(src, dst)
                    moved.append(dst)
                    with contextlib.suppress(OSError):
                        os.chmod(dst, 0o600)
        except OSError as move_error:
            return self._in_memory(
                f"it is damaged ({_one_line(error)}) and could not be moved aside ({_one_line(move_error)})",
                during=during,
            )
        self.moved_aside.extend(moved)
        logger.warning(
            "extraction cache %s is damaged (%s, found on %s); moved it aside to %s and continuing with an "
            "empty cache (uncached subjects are asked again); delete the moved file once you no longer need it",
            self.path,
            _one_line(error),
            during,
            target,
        )
        try:
            return self._open()
        except (sqlite3.DatabaseError, OSError) as e:
            return self._in_memory(e, during=f"{during} after moving the damaged file aside")

    def _in_memory(self, error: BaseException | str, *, during: str) -> sqlite3.Connection:
        self.persistent = False
        logger.warning(
            "extraction cache %s cannot be used (%s, on %s); this run keeps its answers in memory only; "
            "check the file and its folder's permissions and free space",
            self.path,
            _one_line(error),
            during,
        )
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        conn.executescript(self.schema)
        return conn

    def _guarded(self, what: str, op: Callable[[sqlite3.Connection], T], fallback: T, consequence: str) -> T:
        """Run ``op``; heal once on corruption, otherwise warn (once per ``what``) and return ``fallback``."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    return op(self._conn)
                except sqlite3.DatabaseError as e:
                    if attempt == 1 and self.persistent and is_corruption(e):
                        with contextlib.suppress(sqlite3.Error):
                            self._conn.close()
                        self._conn = self._heal(e, during=what)
                        continue
                    if what not in self._warned:
                        self._warned.add(what)
                        logger.warning(
                            "extraction cache %s: %s failed (%s); %s",
                            self.path,
                            what,
                            _one_line(e),
                            consequence,
                        )
                    else:
                        logger.debug("extraction cache %s: %s failed again (%s)", self.path, what, e)
                    return fallback
        raise AssertionError("unreachable")  # pragma: no cover

    # -- answers ------------------------------------------------------------------------------------
    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        def op(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, raw, facts, dropped, prompt_tokens, completion_tokens, attempts, created "  # noqa: S608
                    f"FROM extraction WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for key, raw, facts, dropped, pt, ct, attempts, created in rows:
                    try:
                        out[key] = {
                            "raw": raw,
                            "facts": json.loads(facts),
                            "dropped": json.loads(dropped),
                            "prompt_tokens": pt,
                            "completion_tokens": ct,
                            "attempts": attempts,
                            "created": created,
                        }
                    except ValueError:  # a damaged row is a miss: the subject is asked again
                        logger.warning(
                            "extraction cache %s: unreadable answer for %s; asking again", self.path, key
                        )
            return out

        return self._guarded("reading cached answers", op, {}, "those subjects are treated as not cached")

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
    ) -> bool:
        """Store a successful extraction (and forget any quarantine of the same key); False when it could not be stored."""
        row = (
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
        )

        def op(conn: sqlite3.Connection) -> bool:
            conn.execute("INSERT OR REPLACE INTO extraction VALUES (?,?,?,?,?,?,?,?,?,?)", row)
            conn.execute("DELETE FROM quarantine WHERE key = ?", (key,))
            return True

        return self._guarded(
            "storing an answer", op, False, "answers of this run are kept in the run's output but not cached"
        )

    # -- quarantine memory --------------------------------------------------------------------------
    def get_quarantined(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Remembered quarantines by key: ``raw``, ``errors``, ``attempts``, ``kind``, ``created``."""

        def op(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, raw, errors, attempts, kind, created FROM quarantine WHERE key IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
                for key, raw, errors, attempts, kind, created in rows:
                    try:
                        out[key] = {
                            "raw": raw,
                            "errors": json.loads(errors),
                            "attempts": attempts,
                            "kind": kind,
                            "created": created,
                        }
                    except ValueError:  # a damaged row: the subject is asked again
                        continue
            return out

        return self._guarded("reading remembered quarantines", op, {}, "those subjects are asked again")

    def put_quarantine(
        self,
        key: str,
        *,
        item_id: str,
        kind: str,
        model: str,
        raw: str | None,
        errors: list[str],
        attempts: int,
    ) -> bool:
        """Remember that ``key``'s answers stayed invalid, with the raw output and errors."""
        row = (key, item_id, kind, model, time.time(), raw, json.dumps(errors, ensure_ascii=False), attempts)

        def op(conn: sqlite3.Connection) -> bool:
            conn.execute("INSERT OR REPLACE INTO quarantine VALUES (?,?,?,?,?,?,?,?)", row)
            return True

        return self._guarded(
            "remembering a quarantine",
            op,
            False,
            "the quarantine is in this run's quarantine.jsonl but not remembered",
        )

    def quarantined_count(self) -> int:
        return self._guarded(
            "counting quarantines",
            lambda conn: int(conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]),
            0,
            "reported as 0",
        )

    # -- what answered ------------------------------------------------------------------------------
    def record_endpoint(self, *, endpoint: str, model: str, served: str, mode: str | None) -> None:
        """Remember what ``endpoint`` served for the configured ``model`` (for dry runs and offline re-runs)."""

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO endpoint VALUES (?,?,?,?,?)",
                (endpoint, model, served, mode, time.time()),
            )

        self._guarded("recording the endpoint", op, None, "dry runs cannot count cache hits for it")

    def endpoint_record(self, *, endpoint: str, model: str) -> EndpointRecord | None:
        def op(conn: sqlite3.Connection) -> EndpointRecord | None:
            row = conn.execute(
                "SELECT endpoint, model, served, mode, seen FROM endpoint WHERE endpoint = ? AND model = ?",
                (endpoint, model),
            ).fetchone()
            return None if row is None else EndpointRecord(*row)

        return self._guarded("reading the endpoint record", op, None, "treated as never seen")

    def __len__(self) -> int:
        return self._guarded(
            "counting answers",
            lambda conn: int(conn.execute("SELECT COUNT(*) FROM extraction").fetchone()[0]),
            0,
            "reported as 0",
        )

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()


def _one_line(error: BaseException | str) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while any(Path(f"{target}{s}").exists() for s in ("", "-wal", "-shm")):
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    return target


def _private_folder(folder: Path) -> None:
    """Create the cache folder 0700 (an existing folder is left as it is; the files in it are 0600)."""
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)


def _private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (a -wal/-shm SQLite creates takes the same mode)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.chmod(f"{path}{suffix}", 0o600)
