"""Tables of the report: rows of report data in, escaped HTML out.

:func:`table` is the one template: columns from the rows' keys, values formatted for
reading (thousands separators, 4 significant digits, lists joined, missing values as
a dash), numbers right-aligned. Sections pass data, never markup.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

MISSING = "–"


def fmt(value: Any) -> Any:
    """A cell's display value (``None`` for a missing one)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return None
        if v != 0 and (abs(v) >= 1000 or v.is_integer()):
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}"
        return f"{v:.4g}"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(str(fmt(v)) for v in value)
    return str(value)


def mean_std(values: Sequence[float]) -> str | None:
    """``0.3062 ± 0.0041`` over several seeds; the plain value for one; ``None`` for none."""
    clean = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not clean:
        return None
    if len(clean) == 1:
        return f"{clean[0]:.4f}"
    return f"{np.mean(clean):.4f} ± {np.std(clean, ddof=1):.4f}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    caption: str | None = None,
) -> str:
    """An HTML table of ``rows`` (dicts), in ``columns`` order (default: every key, first seen first).

    Every value is escaped; numeric cells get ``class="num"`` (right-aligned), missing
    ones show a dash.
    """
    if not rows:
        return ""
    cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    names = [(headers or {}).get(c, c) for c in cols]
    out = ['<table class="data">']
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        cells = []
        for c in cols:
            value = row.get(c)
            shown = fmt(value)
            css = ' class="num"' if _is_number(value) or shown is None else ""
            cells.append(f"<td{css}>{escape(MISSING if shown is None else str(shown))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def key_values(values: Mapping[str, Any], *, caption: str | None = None) -> str:
    """A two-column table of named values."""
    return table([{"": k, "value": v} for k, v in values.items()], ["", "value"], caption=caption)
