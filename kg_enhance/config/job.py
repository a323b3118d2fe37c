"""Loading a job file into a :class:`JobSpec` with paths resolved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kg_enhance.config.loader import apply_overrides, read_yaml, substitute_env, suggest, validate_document
from kg_enhance.config.models import JobSpec
from kg_enhance.errors import ConfigError
from kg_enhance.paths import BUNDLED_PREFIX, REPO_DIR, resolve_data_path


def read_job_document(path: str | Path, *, overrides: list[str] | None = None) -> dict[str, Any]:
    """The job file as a substituted, overridden document, not yet validated (:func:`job_from_document`)."""
    path = Path(path)
    doc = substitute_env(read_yaml(path), file=path, deferred=frozenset({"name"}))
    return apply_overrides(doc, overrides) if overrides else doc


def job_from_document(doc: dict[str, Any], path: str | Path) -> JobSpec:
    """Validate a job document read from ``path``; raises :class:`ConfigError` with one line per problem."""
    path = Path(path)
    job = validate_document(doc, JobSpec, file=path)
    job._base_dir = path.resolve().parent
    # `${name}` in the outputs dir refers to the job's own name
    job.outputs.dir = job.outputs.dir.replace("${name}", job.name)
    return job


def load_job(path: str | Path, *, overrides: list[str] | None = None) -> JobSpec:
    """Read, substitute, override and validate a job file.

    Raises :class:`ConfigError` whose message has one line per problem.
    """
    return job_from_document(read_job_document(path, overrides=overrides), path)


def resolve_path(value: str, base_dir: Path) -> Path:
    """Resolve a path named in a job whose file is in ``base_dir``: bundled, absolute, next to the
    job file, or in the repo."""
    candidate = resolve_data_path(value, base=base_dir)
    if candidate.exists() or str(value).startswith(BUNDLED_PREFIX):
        return candidate
    repo_candidate = REPO_DIR / value
    if repo_candidate.exists():
        return repo_candidate
    return candidate


def resolve_job_path(job: JobSpec, value: str) -> Path:
    """Resolve a path named in a job: bundled, absolute, next to the job file, or in the repo."""
    return resolve_path(value, job.base_dir)


def find_ontology(value: str, base_dir: Path) -> Path:
    """The ontology file a job names; a missing one is an error that suggests a file of that folder."""
    path = resolve_path(value, base_dir)
    if not path.is_file():
        folder = path.parent if path.parent.is_dir() else REPO_DIR / "schemas"
        names = sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []
        hint = suggest(Path(value).name, names, listed=f"files in {folder}")
        raise ConfigError(
            f"ontology: file {value!r} not found (looked next to the job file and in the repo){hint}; "
            "point 'ontology' at a file in schemas/"
        )
    return path


def ontology_path(job: JobSpec) -> Path:
    return find_ontology(job.ontology, job.base_dir)
