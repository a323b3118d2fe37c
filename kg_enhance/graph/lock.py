"""One run at a time per namespace: a lock held in the graph itself.

Every store keeps one lock record per namespace (in Neo4j a ``(:KgLock {namespace})``
node under a uniqueness constraint, so two runs starting together cannot both
create it). The record names its holder: run id, job, host, pid, start time and a
heartbeat the holder refreshes while it runs.

A second run refuses at once with one line naming the holder. A lock left by a
killed process is taken over: on the same host when its pid is gone, on another host
when its heartbeat is older than ``graph.lock_stale_after_s``. The take-over is a
compare-and-set on the old holder's run id, so two runs cannot both take it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from kg_enhance.errors import LockHeldError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockOwner:
    run_id: str
    job: str
    host: str
    pid: int
    started: str

    @classmethod
    def here(cls, *, run_id: str, job: str) -> LockOwner:
        return cls(
            run_id=run_id,
            job=job,
            host=socket.gethostname(),
            pid=os.getpid(),
            started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class LockBackend(Protocol):
    """What :func:`acquire` needs from a store (both graph stores implement it)."""

    namespace: str

    def try_lock(self, owner: dict[str, Any]) -> tuple[bool, dict[str, Any]]: ...
    def take_over_lock(self, owner: dict[str, Any], *, stale_run_id: str) -> bool: ...
    def refresh_lock(self, run_id: str) -> bool: ...
    def release_lock(self, run_id: str) -> None: ...


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def stale_reason(holder: dict[str, Any], *, stale_after_s: float, now_ms: int | None = None) -> str | None:
    """Why ``holder`` no longer holds the lock, or ``None`` while it may still be running."""
    if holder.get("host") == socket.gethostname():
        pid = holder.get("pid")
        if isinstance(pid, int) and not pid_alive(pid):
            return f"its process {pid} on this host is gone"
        return None
    beat = holder.get("heartbeat")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if isinstance(beat, int) and now - beat > stale_after_s * 1000:
        return (
            f"no heartbeat for {(now - beat) / 1000:.0f} s (graph.lock_stale_after_s is {stale_after_s:.0f})"
        )
    return None


def describe(holder: dict[str, Any]) -> str:
    return (
        f"run {holder.get('run_id')} of job {holder.get('job')!r} "
        f"(pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')})"
    )


class HeldLock:
    """A held lock with its heartbeat thread; :meth:`release` ends both."""

    def __init__(self, backend: LockBackend, owner: LockOwner, *, heartbeat_s: float) -> None:
        self.backend = backend
        self.owner = owner
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(heartbeat_s,), name=f"kg-lock-{backend.namespace}", daemon=True
        )
        self._thread.start()

    def _beat(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                if not self.backend.refresh_lock(self.owner.run_id):
                    logger.warning(
                        "namespace %r: our lock was taken over by another run", self.backend.namespace
                    )
                    return
            except Exception as e:  # noqa: BLE001 - a missed heartbeat is retried on the next beat
                logger.warning("namespace %r: lock heartbeat failed (%s)", self.backend.namespace, e)

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.backend.release_lock(self.owner.run_id)


def acquire(
    backend: LockBackend, owner: LockOwner, *, stale_after_s: float, heartbeat_s: float = 30.0
) -> HeldLock:
    """Take the namespace's lock for ``owner`` or raise :class:`LockHeldError` naming the holder."""
    mine, holder = backend.try_lock(owner.as_dict())
    if not mine:
        reason = stale_reason(holder, stale_after_s=stale_after_s)
        if reason is None:
            raise LockHeldError(
                f"namespace {backend.namespace!r} is locked by {describe(holder)}; wait for it to finish "
                "(or, if that process is gone on another host, the lock is taken over after graph.lock_stale_after_s)"
            )
        if not backend.take_over_lock(owner.as_dict(), stale_run_id=str(holder.get("run_id"))):
            raise LockHeldError(
                f"namespace {backend.namespace!r}: another run took over the lock of {describe(holder)} first; "
                "wait for it to finish"
            )
        logger.warning(
            "namespace %r: took over the lock of %s: %s", backend.namespace, describe(holder), reason
        )
    return HeldLock(backend, owner, heartbeat_s=heartbeat_s)
