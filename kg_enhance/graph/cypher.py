"""Loads Cypher statements from the project's ``cypher/`` folder by name.

Statements are parameterised. The only text ever substituted into a statement is a
``{{placeholder}}`` for a label or relationship type, and only with a name that
(1) the caller took from the validated ontology and (2) matches a strict identifier
pattern here, checked again at render time. Data never reaches a query string.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from kg_enhance.paths import resource_dir

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class CypherLibrary:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or resource_dir("cypher")

    @lru_cache(maxsize=256)  # noqa: B019 - the library lives as long as the process
    def raw(self, name: str) -> str:
        path = (self.root / f"{name}.cypher").resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"cypher statement name {name!r} escapes the cypher folder")
        if not path.is_file():
            raise FileNotFoundError(f"cypher statement {name!r} not found at {path}")
        return path.read_text(encoding="utf-8")

    def get(self, name: str, **identifiers: str) -> str:
        """The statement ``name`` with ``{{placeholders}}`` filled by validated identifiers."""
        text = self.raw(name)
        wanted = set(_PLACEHOLDER.findall(text))
        if wanted != set(identifiers):
            raise ValueError(f"cypher {name!r} needs identifiers {sorted(wanted)}, got {sorted(identifiers)}")
        for key, value in identifiers.items():
            if not _IDENTIFIER.match(value):
                raise ValueError(
                    f"refusing identifier {value!r} for {{{{{key}}}}} in {name!r}: not a plain name"
                )
        return _PLACEHOLDER.sub(lambda m: f"`{identifiers[m.group(1)]}`", text)

    def names(self) -> list[str]:
        return sorted(str(p.relative_to(self.root).with_suffix("")) for p in self.root.rglob("*.cypher"))
