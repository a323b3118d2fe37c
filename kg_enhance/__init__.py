"""kg_enhance: declarative LLM knowledge-graph augmentation for recommender systems.

The LLM is used offline only: extract facts once, cache them, load them into Neo4j,
embed the graph with PyKEEN, and train an ordinary recommender that serves without
any LLM call.
"""

from kg_enhance.api import dry_run, load_embeddings, recommend, run_job, validate_job, write_schemas
from kg_enhance.errors import KgEnhanceError

__version__ = "0.1.0"

__all__ = [
    "KgEnhanceError",
    "__version__",
    "dry_run",
    "load_embeddings",
    "recommend",
    "run_job",
    "validate_job",
    "write_schemas",
]
