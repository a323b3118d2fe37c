"""Where kg_enhance keeps its state, caches and bundled resources."""

from __future__ import annotations

import os
from pathlib import Path

#: root of the source checkout (or of the installed package's parent)
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def state_dir() -> Path:
    """Directory for mutable state: Neo4j data, the LLM cache, pid files and logs.

    ``KG_ENHANCE_HOME`` overrides it; the default follows the XDG state convention.
    """
    env = os.environ.get("KG_ENHANCE_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / "kg-enhance"
    return private_dir(path)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it readable by its owner only (0700).

    The state folder holds the LLM cache (raw answers), pid files, logs and Neo4j's data
    and auth file: nothing anyone else on the machine should read.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def cache_dir() -> Path:
    """Directory for re-creatable downloads (the Neo4j jars, wheels).

    ``KG_ENHANCE_CACHE`` overrides it; default ``~/.cache/kg-enhance``.
    """
    env = os.environ.get("KG_ENHANCE_CACHE")
    path = (
        Path(env).expanduser()
        if env
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kg-enhance"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def resource_dir(name: str) -> Path:
    """A top-level resource folder of the project (``cypher``, ``schemas``, ``examples``).

    The folders live at the repository root so people can read and edit them; an
    installed wheel carries copies under ``kg_enhance/_resources``.
    """
    for candidate in (PACKAGE_DIR / "_resources" / name, REPO_DIR / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"resource folder '{name}' not found next to the package ({REPO_DIR}); reinstall kg-enhance from a checkout"
    )


BUNDLED_PREFIX = "@bundled/"


def resolve_data_path(value: str | Path, *, base: Path | None = None) -> Path:
    """Resolve a path from a job file.

    ``@bundled/<name>`` points into the data shipped inside the package; relative
    paths are taken relative to the job file's folder (``base``).
    """
    text = str(value)
    if text.startswith(BUNDLED_PREFIX):
        return PACKAGE_DIR / "datasets" / text[len(BUNDLED_PREFIX) :]
    path = Path(text).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path
