"""Errors raised by kg_enhance.

One root, :class:`KgEnhanceError`, and a subclass wherever a caller would act
differently. Every message says *what* failed, *where*, and *what to do*, so the
CLI can print it as one line and exit non-zero.
"""

from __future__ import annotations


class KgEnhanceError(Exception):
    """Root of every error kg_enhance raises on purpose."""

    #: process exit code used by the CLI for this kind of error
    exit_code: int = 1

    def one_line(self) -> str:
        """The message squeezed onto a single line for the CLI."""
        return " ".join(str(self).split())


class ConfigError(KgEnhanceError):
    """A job or ontology file is malformed or invalid."""

    exit_code = 2


class DataError(KgEnhanceError):
    """A catalog, interaction or triple file cannot be read as declared."""

    exit_code = 3


class LLMConfigurationError(KgEnhanceError):
    """The LLM endpoint refused the request for a reason retries cannot fix (401, 404, unknown model)."""

    exit_code = 4


class EmbeddingResponseError(LLMConfigurationError):
    """An embeddings endpoint answered, but not with usable vectors (wrong count or length, NaN, not numbers)."""


class GraphStoreError(KgEnhanceError):
    """A graph-store operation failed in a way that retrying will not fix."""

    exit_code = 6


class ServiceUnavailableError(KgEnhanceError):
    """A service (Neo4j, the LLM server) cannot be reached or started."""

    exit_code = 7


class StageError(KgEnhanceError):
    """A pipeline stage cannot run because an input it needs is missing."""

    exit_code = 8


class SparseGraphError(StageError):
    """The KG has too few triples to hold some out for evaluation; it can still be embedded without."""


class LockHeldError(KgEnhanceError):
    """Another run holds the job's namespace (or run folder); nothing was changed."""

    exit_code = 9
