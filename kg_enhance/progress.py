"""Progress that reads well in a terminal and in a log.

On a terminal (stderr is a TTY, or a Jupyter kernel) :class:`Progress` draws a tqdm
bar. Anywhere else (a pipe, a file, CI) a bar would write a carriage return per update;
instead it logs one line through :mod:`logging` (logger ``kg_enhance.progress``, level
INFO) every ``every_fraction`` of the total (10%) or every ``every_s`` seconds (30 s),
whichever comes first, with the count, the rate and the time left, and one last line
when it closes::

    train bpr_mf: 18/60 epoch (30%) in 4s, 4.5 epoch/s, ETA 9s, loss=0.2113 ndcg@20=0.2410
    train bpr_mf: done, 23/60 epoch in 5s, 4.6 epoch/s, loss=0.1980 ndcg@20=0.2501

The CLI sets that logger to INFO, so these lines reach stderr. Libraries that take a
``use_tqdm`` flag (PyKEEN) get :func:`use_bars`: bars on a terminal only.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any, Generic, TypeVar

from tqdm.auto import tqdm

logger = logging.getLogger("kg_enhance.progress")

T = TypeVar("T")


def _in_notebook() -> bool:
    """A Jupyter kernel: not a TTY, but tqdm draws a widget there."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except AttributeError:
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def on_tty(stream: Any = None) -> bool:
    """Whether ``stream`` (default: stderr, where tqdm draws) is an interactive terminal."""
    target = sys.stderr if stream is None else stream
    try:
        return bool(target.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def use_bars(enabled: bool = True) -> bool:
    """Whether to draw progress bars: only when ``enabled`` and on a terminal (or a notebook)."""
    return enabled and (on_tty() or _in_notebook())


def _duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _rate(done: float, seconds: float, unit: str) -> str:
    if done <= 0 or seconds <= 0:
        return f"? {unit}/s"
    per_s = done / seconds
    return f"{per_s:.3g} {unit}/s" if per_s >= 1 else f"{seconds / done:.3g} s/{unit}"


class Progress(Generic[T]):
    """A tqdm bar on a terminal, log lines elsewhere; nothing when ``enabled`` is false.

    Use it like tqdm: ``update(n)``, ``set_postfix(**values)``, ``close()``, or iterate
    over it when it wraps an ``iterable``. ``tty`` forces the choice (default: detect).
    """

    def __init__(
        self,
        iterable: Iterable[T] | None = None,
        *,
        total: int | None = None,
        desc: str,
        unit: str = "it",
        enabled: bool = True,
        every_fraction: float = 0.1,
        every_s: float = 30.0,
        tty: bool | None = None,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is None and isinstance(iterable, Sized):
            total = len(iterable)
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.enabled = enabled
        self.every_fraction = every_fraction
        self.every_s = every_s
        self.log = log or logger
        self.clock = clock
        self.n = 0
        self.lines = 0
        self._postfix: dict[str, str] = {}
        self._started = clock()
        self._last_line = self._started
        self._last_step = 0
        self._closed = False
        bars = (on_tty() or _in_notebook()) if tty is None else tty
        self._bar: Any = tqdm(total=total, desc=desc, unit=unit) if enabled and bars else None

    @property
    def bar(self) -> bool:
        """Whether a tqdm bar is drawn (rather than log lines)."""
        return self._bar is not None

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("Progress: nothing to iterate; pass an iterable")
        for value in self.iterable:
            try:
                yield value
            except GeneratorExit:  # the loop left early (break) after working on this value
                self.update(1)
                raise
            self.update(1)

    def __enter__(self) -> Progress[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the count (``loss=0.21``)."""
        self._postfix = {k: str(v) for k, v in values.items()}
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def update(self, n: int = 1) -> None:
        if not self.enabled or self._closed:
            return
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self.clock()
        due = now - self._last_line >= self.every_s
        if self.total:
            if self.n >= self.total:
                return  # the closing line says it
            step = math.floor(self.n / self.total / self.every_fraction + 1e-9)
            if step > self._last_step:
                self._last_step = step
                due = True
        if due:
            self._emit(now, self._line(now))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            return
        if not self.enabled or (self.n == 0 and not self.total):
            return
        now = self.clock()
        elapsed = now - self._started
        of = f"/{self.total}" if self.total else ""
        self._emit(
            now,
            f"{self.desc}: done, {self.n}{of} {self.unit} in {_duration(elapsed)}, "
            f"{_rate(self.n, elapsed, self.unit)}{self._suffix()}",
        )

    def _suffix(self) -> str:
        return (", " + " ".join(f"{k}={v}" for k, v in self._postfix.items())) if self._postfix else ""

    def _line(self, now: float) -> str:
        elapsed = now - self._started
        parts = [f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts[0] += f" in {_duration(elapsed)}"
        parts.append(_rate(self.n, elapsed, self.unit))
        if self.total and self.n > 0 and elapsed > 0:
            parts.append(f"ETA {_duration((self.total - self.n) * elapsed / self.n)}")
        return f"{self.desc}: {', '.join(parts)}{self._suffix()}"

    def _emit(self, now: float, line: str) -> None:
        self._last_line = now
        self.lines += 1
        self.log.info("%s", line)
