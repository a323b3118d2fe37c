"""A ``cypher/`` statement as it was at an older commit, for benchmarks that compare it with today's."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def statement_at(commit: str, name: str) -> str:
    """The text of ``cypher/<name>.cypher`` at ``commit`` (``git show``)."""
    return subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:cypher/{name}.cypher"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
