"""What an extraction run will ask: the subjects, template, grounding and generation settings.

Shared by the extract stage and ``kg-enhance run --dry-run`` so both select the same
subjects (``llm.item_limit``, ``llm.users.limit``) and compute the same cache keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kg_enhance.config.models import JobSpec
from kg_enhance.extract.cache import ExtractionCache
from kg_enhance.extract.client import normalise_endpoint
from kg_enhance.extract.engine import subject_cache_key
from kg_enhance.extract.prompts import PromptTemplate, load_template, render_item_prompt
from kg_enhance.ontology.models import Ontology
from kg_enhance.types import Item


@dataclass(frozen=True)
class ExtractionPlan:
    """The subjects of one head kind (``Item`` or ``User``) and how they are asked."""

    head: str
    subjects: list[Item]
    template: PromptTemplate
    grounding: str

    @classmethod
    def for_items(cls, job: JobSpec, items: list[Item]) -> ExtractionPlan:
        limit = job.llm.item_limit
        return cls(
            head="Item",
            subjects=items[:limit] if limit else items,
            template=load_template(job.llm.prompt_template),
            grounding=job.llm.grounding,
        )

    @classmethod
    def for_users(cls, job: JobSpec, users: list[Item]) -> ExtractionPlan:
        limit = job.llm.users.limit
        return cls(
            head="User",
            subjects=users[:limit] if limit else users,
            template=load_template(job.llm.users.prompt_template),
            grounding=job.llm.users.grounding,
        )

    def prompt_chars(self, ontology: Ontology) -> int:
        """Characters of every prompt of the plan (token estimates for ``--dry-run``)."""
        return sum(
            len(message["content"])
            for subject in self.subjects
            for message in render_item_prompt(
                self.template, ontology, subject, grounding=self.grounding, head=self.head
            )
        )

    def cache_keys(
        self,
        job: JobSpec,
        ontology: Ontology,
        *,
        mode: str,
        served_model: str,
        endpoint: str | None = None,
    ) -> list[str]:
        """The extraction cache key of every subject, as the engine computes it.

        ``served_model`` is the model the endpoint reports serving
        (:attr:`~kg_enhance.extract.client.ServerInfo.served_model`), ``mode`` the
        structured-output mode in use, ``endpoint`` the normalised base URL (default:
        ``llm.base_url`` normalised).
        """
        fingerprint = ontology.fingerprint()
        where = endpoint if endpoint is not None else normalise_endpoint(job.llm.base_url)
        return [
            subject_cache_key(
                endpoint=where,
                model=served_model,
                generation=generation_settings(job),
                mode=mode,
                template_hash=self.template.hash,
                ontology_fingerprint=fingerprint,
                grounding=self.grounding,
                head=self.head,
                item=subject,
            )
            for subject in self.subjects
        ]

    def cached(
        self,
        job: JobSpec,
        ontology: Ontology,
        cache: ExtractionCache,
        *,
        mode: str,
        served_model: str | None = None,
    ) -> int:
        """How many subjects already have a cached answer.

        Without ``served_model`` (a dry run does not contact the server), the model the
        endpoint served the last time a run used it is taken from the cache; an endpoint
        no run has used yet has nothing cached, so 0.
        """
        if served_model is None:
            seen = cache.endpoint_record(endpoint=normalise_endpoint(job.llm.base_url), model=job.llm.model)
            if seen is None:
                return 0
            served_model = seen.served
        return len(cache.get_many(self.cache_keys(job, ontology, mode=mode, served_model=served_model)))


def generation_settings(job: JobSpec) -> dict[str, Any]:
    """The sampling settings that, with the prompt, determine an answer (part of the cache key)."""
    return {"temperature": job.llm.temperature, "max_tokens": job.llm.max_tokens, "seed": job.llm.seed}
