"""Parsing, repair and validation of LLM answers.

Order: lenient JSON parsing (code fences, prose around the object, a bare array),
then the pydantic model built from the ontology, then semantic checks (empty or
overlong names, self-loops, duplicates, grounding). Every problem becomes a short
message that is fed back to the LLM on a repair attempt and kept in quarantine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from kg_enhance.names import clean_name, normalise_name
from kg_enhance.ontology.output import MAX_OBJECT_CHARS

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*|\s*```$", re.MULTILINE)


def parse_json_lenient(text: str) -> Any:
    """Parse an LLM answer as JSON, tolerating code fences and prose around one object.

    The error says which failure it was: no JSON at all, JSON cut off at the end of the
    answer (truncated: ``llm.max_tokens`` too small), or JSON broken in the middle.
    """
    stripped = _FENCE.sub("", text.strip()).strip()
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as e:
        first_error = e
    decoder = json.JSONDecoder()
    for opener in ("{", "["):
        start = stripped.find(opener)
        while start != -1:
            try:
                value, _ = decoder.raw_decode(stripped[start:])
                return value
            except json.JSONDecodeError:
                start = stripped.find(opener, start + 1)
    if "{" not in stripped and "[" not in stripped:
        raise ValueError("answer holds no JSON object or array")
    cut_off = first_error.msg.startswith("Unterminated string") or first_error.pos >= len(stripped) - 1
    if stripped[:1] in "{[" and cut_off and _unclosed(stripped):
        raise ValueError("answer is not valid JSON: it ends before the JSON is complete (truncated)")
    raise ValueError(
        f"answer is not valid JSON: {first_error.msg} at character {first_error.pos} of {len(stripped)}"
    )


def _unclosed(text: str) -> bool:
    """Whether ``text`` ends inside a string or with brackets open, none closed wrongly."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]":
            if not stack or stack.pop() != ("{" if ch == "}" else "["):
                return False
    return in_string or bool(stack)


#: under ``text`` grounding, a "name" of more words than this is a sentence (the prompt asks for 1 to 6)
MAX_NAME_WORDS = 8
#: under ``text`` grounding, a name of at least this many words that ends like a sentence is one
SENTENCE_MIN_WORDS = 4
_SENTENCE_END = re.compile(r"[.!?;]$")
#: characters of JSON syntax that no entity name of a text contains (':' has its own check)
JSON_PUNCTUATION = frozenset('{}[]"\\')

#: why a single fact was dropped: reason key -> the words its note ends with (``dropped.json``); the
#: extract report counts drops per key (``dropped_by_reason``)
DROP_REASONS: dict[str, str] = {
    "empty_name": "empty name",
    "too_long": f"longer than {MAX_OBJECT_CHARS} characters",
    "sentence": "a sentence, not a name (grounding=text)",
    "json_punctuation": "contains JSON punctuation, not a name (grounding=text)",
    "self_loop": "the item itself (self-loop)",
    "field_value": "looks like a copied 'field: value' pair, not a name",
    "field_name": "a field or type name, not an entity",
    "duplicate": "duplicate",
    "off_vocabulary": "vocabulary",
    "not_in_text": "not found in the item's text (grounding=text)",
}


def drop_reason(note: str) -> str | None:
    """The :data:`DROP_REASONS` key of a drop note; ``None`` for a fact kept with a note (retyped, confidence)."""
    if note.endswith("(fact kept)"):
        return None
    for key, words in DROP_REASONS.items():
        if note.endswith(words):
            return key
    return "other"


def text_name_problem(name: str, key: str, text_key: str) -> str | None:
    """Why ``name`` (normalised ``key``) cannot be an entity named in a text whose normalised form, padded
    with spaces, is ``text_key``: a sentence, JSON punctuation, or not in the text; ``None`` when it can."""
    words = len(name.split())
    if words > MAX_NAME_WORDS or (words >= SENTENCE_MIN_WORDS and _SENTENCE_END.search(name)):
        return DROP_REASONS["sentence"]
    if any(c in JSON_PUNCTUATION for c in name):
        return DROP_REASONS["json_punctuation"]
    if f" {key} " not in text_key:
        return DROP_REASONS["not_in_text"]
    return None


def recheck_cached(
    facts: list[dict[str, Any]], *, item_text: str, grounding: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Facts of a cached answer under the checks of this version: an answer cached before a check existed
    gets it on reading (its cache entry is left as it is). Returns the kept facts and the drop notes."""
    if grounding != "text":
        return facts, []
    text_key = f" {normalise_name(item_text)} "
    kept, notes = [], []
    for fact in facts:
        name = str(fact.get("object", ""))
        problem = text_name_problem(name, normalise_name(name), text_key)
        if problem is None:
            kept.append(fact)
        else:
            notes.append(f"{fact.get('relation')} {name!r}: {problem}")
    return kept, notes


@dataclass
class Checked:
    facts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def check_answer(
    text: str,
    model: type[BaseModel],
    *,
    item_title: str | None,
    item_text: str,
    grounding: str,
    vocabularies: dict[str, list[str]] | None = None,
    reserved_words: set[str] | None = None,
    allowed_types: dict[str, list[str]] | None = None,
) -> Checked:
    """Validate one answer.

    ``errors`` are fatal for the answer (it is re-asked or quarantined);
    ``dropped`` are single facts removed for semantic reasons (self-loop, duplicate,
    ungrounded, off-vocabulary) while the rest of the answer is kept. Both are reported.
    """
    result = Checked()
    try:
        data = parse_json_lenient(text)
    except ValueError as e:
        result.errors.append(str(e))
        return result
    if isinstance(data, list):  # a bare array of facts: accept it as the facts list
        data = {"facts": data}
    elif isinstance(data, dict) and "facts" not in data and "relation" in data:  # one bare fact
        data = {"facts": [data]}
    if not isinstance(data, dict):
        result.errors.append(f"expected a JSON object with a 'facts' list, got {type(data).__name__}")
        return result
    try:
        parsed = model.model_validate(data)
    except ValidationError as e:
        for err in e.errors()[:8]:
            loc = ".".join(str(p) for p in err["loc"])
            result.errors.append(f"{loc}: {err['msg']}")
        return result

    title_key = normalise_name(_strip_year(item_title)) if item_title else None
    text_key = f" {normalise_name(item_text)} "
    vocab_keys = {t: {normalise_name(v): v for v in vs} for t, vs in (vocabularies or {}).items()}
    seen: set[tuple[str, str]] = set()
    for fact in parsed.facts:  # type: ignore[attr-defined]
        raw = fact.model_dump()
        name = clean_name(raw["object"])
        key = normalise_name(name)
        label = f"{raw['relation']} {name!r}"
        if not key:
            result.dropped.append(f"{label}: {DROP_REASONS['empty_name']}")
            continue
        if len(name) > MAX_OBJECT_CHARS:
            result.dropped.append(f"{label}: {DROP_REASONS['too_long']}")
            continue
        if grounding == "text" and (problem := text_name_problem(name, key, text_key)) is not None:
            if problem != DROP_REASONS["not_in_text"]:  # not_in_text is checked last, after retyping
                result.dropped.append(f"{label}: {problem}")
                continue
        if title_key and (
            key == title_key or key == normalise_name(item_title or "") or f" {title_key} " in f" {key} "
        ):
            result.dropped.append(f"{label}: {DROP_REASONS['self_loop']}")
            continue
        if ":" in name:
            result.dropped.append(f"{label}: {DROP_REASONS['field_value']}")
            continue
        if reserved_words and key in reserved_words:
            result.dropped.append(f"{label}: {DROP_REASONS['field_name']}")
            continue
        if (raw["relation"], key) in seen:
            result.dropped.append(f"{label}: {DROP_REASONS['duplicate']}")
            continue
        if raw["object_type"] not in vocab_keys:
            # a closed-vocabulary name given another allowed type ("Sci-Fi" as a Theme) is retyped
            for other in (allowed_types or {}).get(raw["relation"], []):
                if other != raw["object_type"] and key in vocab_keys.get(other, {}):
                    result.dropped.append(f"{label}: retyped {raw['object_type']} -> {other} (fact kept)")
                    raw["object_type"] = other
                    break
        vocab = vocab_keys.get(raw["object_type"])
        if vocab is not None:
            if key not in vocab:
                result.dropped.append(f"{label}: not in the {raw['object_type']} vocabulary")
                continue
            name = vocab[key]
        if grounding == "text" and f" {key} " not in text_key:
            result.dropped.append(f"{label}: {DROP_REASONS['not_in_text']}")
            continue
        conf = raw.get("confidence")
        if conf is not None and not 0.0 <= conf <= 1.0:
            result.dropped.append(f"{label}: confidence {conf} outside [0, 1], ignored (fact kept)")
            raw["confidence"] = None
        seen.add((raw["relation"], key))
        raw["object"] = name
        result.facts.append(raw)
    return result


_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")


def _strip_year(title: str) -> str:
    return _YEAR.sub("", title)
