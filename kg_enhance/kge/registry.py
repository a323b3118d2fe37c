"""Names of PyKEEN models, validated through PyKEEN's own resolver.

``pykeen.models`` is imported inside the functions: it takes about 5 s to import, and
``kg_enhance.api`` (hence every CLI command) imports this module.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def model_names() -> tuple[str, ...]:
    from pykeen.models import model_resolver

    return tuple(sorted(cls.__name__ for cls in model_resolver))


def check_model_name(name: str) -> str:
    """Return PyKEEN's canonical class name for ``name`` or raise listing the valid ones."""
    from pykeen.models import model_resolver

    try:
        return model_resolver.lookup(name).__name__
    except (KeyError, ValueError):
        raise ValueError(f"unknown PyKEEN model {name!r}; valid names: {', '.join(model_names())}") from None
