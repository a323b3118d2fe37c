"""YAML loader: safe_load -> ${VAR} substitution -> --set overrides -> validation.

Every error names the file, the dotted key path and a fix, on one line each.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from kg_enhance.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")


def substitute_env(
    value: Any,
    *,
    path: str = "",
    file: Path | None = None,
    env: dict[str, str] | None = None,
    deferred: frozenset[str] = frozenset(),
) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML document.

    A variable that is unset and has no default is an error naming the variable and the key
    (every such variable of the document, one line each). Names in ``deferred`` that the
    environment does not set are left as they are: the caller fills them from the document
    itself (the job's ``${name}``).
    """
    env = dict(os.environ) if env is None else env
    missing: list[str] = []
    out = _substitute(value, path=path, file=file, env=env, deferred=deferred, missing=missing)
    if missing:
        raise ConfigError("\n".join(missing))
    return out


def _substitute(
    value: Any,
    *,
    path: str,
    file: Path | None,
    env: dict[str, str],
    deferred: frozenset[str],
    missing: list[str],
) -> Any:
    if isinstance(value, dict):
        return {
            k: _substitute(
                v,
                path=f"{path}.{k}" if path else str(k),
                file=file,
                env=env,
                deferred=deferred,
                missing=missing,
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _substitute(v, path=f"{path}[{i}]", file=file, env=env, deferred=deferred, missing=missing)
            for i, v in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        var, has_default, default = match.group(1), match.group(2), match.group(3)
        if var in deferred and var not in env:
            return match.group(0)
        if var in env and env[var] != "":
            return env[var]
        if has_default is not None:
            return default or ""
        missing.append(
            f"{file or '<job>'}: {path or '<root>'}: environment variable {var} is not set; "
            f"export {var}=... or write ${{{var}:-default}}"
        )
        return match.group(0)

    return _VAR.sub(repl, value)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one ``--set a.b.c=value`` into a key path and a YAML-typed value."""
    if "=" not in text:
        raise ConfigError(
            f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. --set recommender.epochs=5"
        )
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: the key is empty; write e.g. --set kge.dim=32")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(doc: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = doc
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text}: '{'.'.join(parts[: i + 1])}' is not a mapping")
            node = node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"--set {text}: cannot set '{last}' inside a value that is not a mapping")
    return doc


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"{path}: file not found; check the path (relative paths start at the current folder)"
        )
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {e.start}); save the file as UTF-8") from e
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: malformed YAML at {where}: {problem}; fix the syntax there") from e
    if doc is None:
        raise ConfigError(f"{path}: the file is empty; see examples/jobs/ for a complete job")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not a {type(doc).__name__}")
    return doc


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of ``loc``, for 'did you mean' hints."""
    current: Any = model
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        nxt = None
        for cand in candidates:
            for sub in (cand, *getattr(cand, "__args__", ())):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    nxt = sub
                    break
            if nxt:
                break
        if nxt is None:
            return None
        current = nxt
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def suggest(word: str, choices: Iterable[str], *, listed: str = "") -> str:
    """``"; did you mean 'X'?"`` for the closest of ``choices``; else ``"; <listed>: a, b, c"`` when
    ``listed`` names the choices, else nothing."""
    options = [str(c) for c in choices]
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        lowered = {o.casefold(): o for o in options}
        if word.casefold() in lowered:
            close = [lowered[word.casefold()]]
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; {listed}: {', '.join(options)}" if listed and options else ""


def format_validation_error(err: ValidationError, *, model: type[BaseModel], file: Path | str) -> list[str]:
    """One line per problem: ``file: dotted.key: message; fix``.

    A model-wide check (a ``model_validator`` of the root model) may report several
    problems at once: one per line of its message, each starting with its own dotted key.
    """
    lines: list[str] = []
    for item in err.errors():
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-after")))
        dotted = ".".join(str(p) for p in loc) or "<root>"
        kind = item["type"]
        msg = item["msg"]
        if kind == "value_error" and not loc:
            lines.extend(f"{file}: {line}" for line in msg.removeprefix("Value error, ").splitlines())
            continue
        if kind == "extra_forbidden":
            owner = _model_at(model, loc)
            hint = ""
            if owner is not None:
                close = difflib.get_close_matches(str(loc[-1]), list(owner.model_fields), n=1)
                valid = ", ".join(k for k in owner.model_fields if not k.startswith("_"))
                hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys here: {valid}"
            lines.append(f"{file}: {dotted}: unknown key{hint}")
        elif kind == "missing":
            lines.append(f"{file}: {dotted}: required key is missing; add it (see `kg-enhance schema`)")
        else:
            got = item.get("input")
            shown = repr(got)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            fix = "; fix the value" if kind != "value_error" else ""
            lines.append(f"{file}: {dotted}: {msg} (got {shown}){fix}")
    return lines


def validate_document(doc: dict[str, Any], model: type[M], *, file: Path | str) -> M:
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        lines = format_validation_error(e, model=model, file=file)
        raise ConfigError("\n".join(lines)) from e


def load_yaml_model(
    path: Path,
    model: type[M],
    *,
    kind: str,
    overrides: list[str] | None = None,
    deferred: frozenset[str] = frozenset(),
) -> M:
    doc = read_yaml(path)
    doc = substitute_env(doc, file=path, deferred=deferred)
    if overrides:
        doc = apply_overrides(doc, overrides)
    return validate_document(doc, model, file=path)
