"""The job spec: pydantic models, the YAML loader, and defaults."""

from kg_enhance.config.job import load_job
from kg_enhance.config.models import STAGES, JobSpec

__all__ = ["STAGES", "JobSpec", "load_job"]
