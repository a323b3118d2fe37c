"""Ontology: entity and relation types, and the output models, JSON Schema and prompt text built from them."""

from kg_enhance.ontology.models import EntityType, ItemSpec, Ontology, RelationType, load_ontology
from kg_enhance.ontology.output import FactSet, build_fact_model, fact_json_schema, ontology_prompt_text

__all__ = [
    "EntityType",
    "FactSet",
    "ItemSpec",
    "Ontology",
    "RelationType",
    "build_fact_model",
    "fact_json_schema",
    "load_ontology",
    "ontology_prompt_text",
]
