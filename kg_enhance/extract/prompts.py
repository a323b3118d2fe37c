"""Versioned prompt templates.

A template lives in ``extract/templates/<name>.txt`` with ``### system`` and
``### user`` sections and ``str.format`` placeholders. Its content hash is part of
every cache key, so editing a template re-extracts exactly what it affects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kg_enhance.errors import ConfigError
from kg_enhance.ontology.models import Ontology
from kg_enhance.ontology.output import ontology_prompt_text
from kg_enhance.types import Item

TEMPLATE_DIR = Path(__file__).parent / "templates"

GROUNDING_RULES = {
    "world": "You may use your own knowledge of the {item_label} in addition to the text given.",
    "text": "Use only names that appear in the text given; do not add outside knowledge.",
}


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    user: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(f"{self.name}\n{self.system}\n{self.user}".encode()).hexdigest()[:16]


@lru_cache(maxsize=16)
def load_template(name: str) -> PromptTemplate:
    path = TEMPLATE_DIR / f"{name}.txt"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in TEMPLATE_DIR.glob("*.txt")))
        raise ConfigError(f"llm.prompt_template: template {name!r} not found; known templates: {known}")
    text = path.read_text(encoding="utf-8")
    if "### system" not in text or "### user" not in text:
        raise ConfigError(f"{path}: a template needs '### system' and '### user' sections")
    system, user = text.split("### user", 1)
    return PromptTemplate(name=name, system=system.replace("### system", "", 1).strip(), user=user.strip())


def item_text(item: Item) -> str:
    """The item's declared text fields in declaration order: the title alone, the rest as ``Field: value``."""
    parts = []
    for key, value in item.text.items():
        if not value:
            continue
        parts.append(
            value
            if item.title is not None and value == item.title
            else f"{key.replace('_', ' ').capitalize()}: {value}"
        )
    return ". ".join(parts) if parts else (item.title or item.item_id)


def render_item_prompt(
    template: PromptTemplate, ontology: Ontology, item: Item, *, grounding: str, head: str = "Item"
) -> list[dict[str, str]]:
    """Chat messages for one subject: a catalog item, or a user (``head="User"``, ``item`` holds the user's text)."""
    label = ontology.item.label.lower()
    values = {
        "item_label": label,
        "ontology": ontology_prompt_text(ontology, head=head),
        "grounding_rule": GROUNDING_RULES[grounding].format(item_label=label),
        "item_text": item_text(item),
    }
    return [
        {"role": "system", "content": template.system.format(**values)},
        {"role": "user", "content": template.user.format(**values)},
    ]
