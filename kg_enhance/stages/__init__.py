"""The pipeline's stages, one module each: ``extract -> load -> embed_text -> embed -> recommend -> export``.

Each stage takes a :class:`~kg_enhance.stages.base.StageContext` and returns a typed
:class:`~kg_enhance.stages.base.StageResult`; :mod:`kg_enhance.pipeline` orders and runs them.
"""

from __future__ import annotations

from kg_enhance.stages.base import Stage, StageContext, StageResult
from kg_enhance.stages.embed import EmbedResult, EmbedStage
from kg_enhance.stages.embed_text import EmbedTextStage, TextEmbedResult
from kg_enhance.stages.export import ExportResult, ExportStage
from kg_enhance.stages.extract import ExtractResult, ExtractStage
from kg_enhance.stages.load import LoadResult, LoadStage
from kg_enhance.stages.recommend import RecommendResult, RecommendStage

#: every stage by name, in pipeline order
STAGE_REGISTRY: dict[str, Stage[StageResult]] = {
    stage.name: stage
    for stage in (
        ExtractStage(),
        LoadStage(),
        EmbedTextStage(),
        EmbedStage(),
        RecommendStage(),
        ExportStage(),
    )
}

__all__ = [
    "STAGE_REGISTRY",
    "EmbedResult",
    "EmbedStage",
    "EmbedTextStage",
    "ExportResult",
    "ExportStage",
    "ExtractResult",
    "ExtractStage",
    "LoadResult",
    "LoadStage",
    "RecommendResult",
    "RecommendStage",
    "Stage",
    "StageContext",
    "StageResult",
    "TextEmbedResult",
]
