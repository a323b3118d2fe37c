"""The import graph keeps the pipeline's shape: every module imports only downward.

``extract -> load (graph) -> embed (kge) -> recommend (rec) -> export`` are folders;
a folder may use the layers below it and its own modules, never a layer above or
beside it: graph does not import extract (they share only ``types.Fact``), config
does not import the trainers, kge does not import rec, and only ``stages/`` joins them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kg_enhance"

#: lowest first; a module may import from its own unit or from a strictly lower layer
LAYERS: list[set[str]] = [
    {"errors", "paths", "names", "types", "progress", "arrays"},
    {"config"},
    {"ontology"},
    {"io"},
    {"rundir", "services", "datasets"},
    {"extract", "graph"},  # siblings: they meet only in types.Fact (and the stages that join them)
    {"kge"},
    {"rec"},
    {"stages"},
    {"pipeline", "ablation", "noise_curve"},
    {"report"},
    {"api"},
    {"cli", "__init__", "__main__"},
]
LAYER = {unit: n for n, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    """``kg_enhance.graph.store`` -> ``graph``; ``kg_enhance`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        out.append((name.removesuffix(".__init__") if name != "kg_enhance.__init__" else name, path))
    return out


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kg_enhance"):
            found.add(node.module)
            if node.module == "kg_enhance":
                found.update(f"kg_enhance.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("kg_enhance"))
    return found


def test_every_module_has_a_layer() -> None:
    missing = sorted({_unit(m) for m, _ in _modules()} - set(LAYER))
    assert not missing, f"add these package units to LAYERS: {missing}"


def violations(module: str, targets: set[str]) -> list[str]:
    """Imports of ``module`` that go to its own layer's other units or to a higher layer."""
    own = _unit(module)
    wrong = []
    for target in sorted(targets):
        unit = _unit(target)
        if unit == own or target == "kg_enhance":
            continue
        if LAYER[unit] >= LAYER[own]:
            wrong.append(f"{target} (layer {unit})")
    return wrong


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_imports_only_downward(module: str, path: Path) -> None:
    wrong = violations(module, _imports(path))
    assert not wrong, f"{module} imports upward or sideways: {', '.join(wrong)}"


def test_the_pipeline_order_is_the_layer_order() -> None:
    order = ["extract", "kge", "rec", "stages", "pipeline", "api", "cli"]
    assert [LAYER[u] for u in order] == sorted(set(LAYER[u] for u in order))
    assert LAYER["extract"] == LAYER["graph"] < LAYER["kge"]


def test_the_check_reports_upward_and_sideways_imports(tmp_path: Path) -> None:
    """The check itself can fail: the two wrong-way dependencies this layout removed are caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from kg_enhance.extract.validate import check_answer\nimport kg_enhance.kge.registry\n")
    assert _imports(bad) == {"kg_enhance.extract.validate", "kg_enhance.kge.registry"}
    assert violations("kg_enhance.graph.resolve", {"kg_enhance.extract.validate"}) == [
        "kg_enhance.extract.validate (layer extract)"
    ]
    assert violations("kg_enhance.config.models", {"kg_enhance.kge.registry"}) == [
        "kg_enhance.kge.registry (layer kge)"
    ]
    assert violations("kg_enhance.rundir", {"kg_enhance.services.llm"}) == [
        "kg_enhance.services.llm (layer services)"
    ]
    assert violations("kg_enhance.rec.kg", {"kg_enhance.kge.artifacts", "kg_enhance.rec.data"}) == []
