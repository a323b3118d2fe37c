"""Loading a job file into a :class:`JobSpec` with paths resolved."""

from __future__ import annotations

from pathlib import Path

from kg_enhance.config.loader import load_yaml_model
from kg_enhance.config.models import JobSpec
from kg_enhance.errors import ConfigError
from kg_enhance.paths import BUNDLED_PREFIX, REPO_DIR, resolve_data_path


def load_job(path: str | Path, *, overrides: list[str] | None = None) -> JobSpec:
    """Read, substitute, override and validate a job file.

    Raises :class:`ConfigError` whose message has one line per problem.
    """
    path = Path(path)
    job = load_yaml_model(path, JobSpec, kind="job", overrides=overrides, deferred=frozenset({"name"}))
    job._base_dir = path.resolve().parent
    # `${name}` in the outputs dir refers to the job's own name
    job.outputs.dir = job.outputs.dir.replace("${name}", job.name)
    return job


def resolve_job_path(job: JobSpec, value: str) -> Path:
    """Resolve a path named in a job: bundled, absolute, next to the job file, or in the repo."""
    candidate = resolve_data_path(value, base=job.base_dir)
    if candidate.exists() or str(value).startswith(BUNDLED_PREFIX):
        return candidate
    repo_candidate = REPO_DIR / value
    if repo_candidate.exists():
        return repo_candidate
    return candidate


def ontology_path(job: JobSpec) -> Path:
    path = resolve_job_path(job, job.ontology)
    if not path.is_file():
        raise ConfigError(
            f"ontology: file {job.ontology!r} not found (looked next to the job file and in the repo); "
            "point 'ontology' at a file in schemas/"
        )
    return path
