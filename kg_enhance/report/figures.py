"""The report's figures: matplotlib, rendered to PNG and embedded as ``data:`` URIs.

Every function takes plain data from ``report.json`` (or the run folder) and returns
a :class:`Figure` (an ``<img>`` with its data URI and alt text), or ``None`` when there
is nothing to draw. Figures are built with :class:`matplotlib.figure.Figure` directly,
never pyplot: no global state, no window, safe in any process.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure

#: status -> bar colour of the stage timeline
STATUS_COLOURS = {
    "ok": "#3a923a",
    "failed": "#c0392b",
    "interrupted": "#e67e22",
    "running": "#e67e22",
    "pending": "#95a5a6",
}
#: colours of the projection's groups (matplotlib's tab10 without its grey)
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
]
OTHER_COLOUR = "#7f7f7f"
NONE_COLOUR = "#d0d0d0"
DPI = 96


@dataclass(frozen=True)
class Figure:
    """A rendered figure: a PNG as a ``data:`` URI, with alt text."""

    data_uri: str
    alt: str
    png_bytes: int


def render(fig: MplFigure, alt: str) -> Figure:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    png = buf.getvalue()
    return Figure("data:image/png;base64," + base64.b64encode(png).decode("ascii"), alt, len(png))


def _style(ax: Axes) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(axis="both", alpha=0.25)


def stage_timeline(stages: Sequence[Mapping[str, Any]]) -> Figure | None:
    """Stages of this run one after another (wall seconds, coloured by status) and each stage's CPU
    seconds and peak RSS. ``stages``: ``{name, status, seconds, cpu_seconds?, peak_rss_mib?}``."""
    rows = [s for s in stages if s.get("seconds") is not None]
    if not rows:
        return None
    names = [str(s["name"]) for s in rows]
    y = np.arange(len(rows))[::-1]
    fig = MplFigure(figsize=(10, 0.45 * len(rows) + 1.4))
    ax, ax_cpu, ax_mem = fig.subplots(1, 3, gridspec_kw={"width_ratios": [3, 1.3, 1.3]}, sharey=True)
    start = 0.0
    for yy, s in zip(y, rows, strict=True):
        seconds = float(s["seconds"])
        colour = STATUS_COLOURS.get(str(s.get("status")), "#95a5a6")
        ax.barh(yy, max(seconds, 1e-3), left=start, color=colour, height=0.6)
        ax.annotate(
            f" {seconds:.1f}s ({s.get('status')})",
            (start + seconds, yy),
            va="center",
            fontsize=8,
            annotation_clip=False,
        )
        start += seconds
    ax.set_yticks(y, names)
    ax.set_xlabel("wall-clock seconds from the start of the run")
    ax.set_title("stage timeline", fontsize=10)
    ax.set_xlim(0, start * 1.3 if start > 0 else 1)
    cpu = [float(s.get("cpu_seconds") or 0.0) for s in rows]
    mem = [float(s.get("peak_rss_mib") or 0.0) for s in rows]
    ax_cpu.barh(y, cpu, color="#2c7fb8", height=0.6)
    ax_cpu.set_xlabel("CPU seconds (all threads)")
    ax_cpu.set_title("CPU", fontsize=10)
    ax_mem.barh(y, mem, color="#7b3294", height=0.6)
    ax_mem.set_xlabel("peak RSS at stage end (MiB)")
    ax_mem.set_title("memory", fontsize=10)
    for a in (ax, ax_cpu, ax_mem):
        _style(a)
        a.grid(axis="y", visible=False)
    fig.tight_layout()
    return render(fig, "stage timeline with wall-clock seconds, CPU seconds and peak RSS per stage")


def degree_buckets(distributions: Mapping[str, Mapping[str, Any]]) -> Figure | None:
    """Bucketed degree histograms, one panel per distribution (``{"items per entity": dist, ...}``)."""
    panels = [(name, d) for name, d in distributions.items() if d.get("buckets")]
    if not panels:
        return None
    fig = MplFigure(figsize=(4.2 * len(panels), 3.0))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, dist) in zip(axes, panels, strict=True):
        buckets: Mapping[str, int] = dist["buckets"]
        labels = list(buckets)
        values = [int(buckets[b]) for b in labels]
        if dist.get("zero"):
            labels, values = ["0", *labels], [int(dist["zero"]), *values]
        ax.bar(labels, values, color="#2c7fb8")
        for x, v in enumerate(values):
            ax.annotate(str(v), (x, v), ha="center", va="bottom", fontsize=8)
        ax.set_title(f"{name} (mean {dist.get('mean')}, max {dist.get('max')})", fontsize=9)
        ax.set_xlabel("degree")
        ax.set_ylabel("nodes")
        _style(ax)
    fig.tight_layout()
    return render(fig, "degree distributions: " + ", ".join(n for n, _ in panels))


def stacked_counts(
    counts: Mapping[str, Mapping[str, int]], *, title: str, xlabel: str = "facts"
) -> Figure | None:
    """Horizontal bars per row key, stacked by column key (facts per relation, stacked by source)."""
    rows = [r for r in counts if sum(counts[r].values()) > 0]
    if not rows:
        return None
    columns = sorted({c for r in rows for c in counts[r]})
    fig = MplFigure(figsize=(9, 0.42 * len(rows) + 1.3))
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    left = np.zeros(len(rows))
    for n, col in enumerate(columns):
        values = np.array([counts[r].get(col, 0) for r in rows], dtype=float)
        ax.barh(y, values, left=left, label=col, color=PALETTE[n % len(PALETTE)], height=0.6)
        left += values
    for yy, total in zip(y, left, strict=True):
        ax.annotate(f" {int(total)}", (total, yy), va="center", fontsize=8)
    ax.set_yticks(y, rows)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    _style(ax)
    fig.tight_layout()
    return render(fig, title)


def loss_curve(losses: Sequence[float], *, title: str) -> Figure | None:
    if not losses:
        return None
    fig = MplFigure(figsize=(7, 3.0))
    ax = fig.subplots()
    epochs = np.arange(1, len(losses) + 1)
    ax.plot(epochs, losses, marker="o" if len(losses) <= 30 else None, markersize=3, color="#2c7fb8")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_title(title, fontsize=10)
    _style(ax)
    fig.tight_layout()
    return render(fig, title)


def training_curves(histories: Mapping[str, Sequence[Mapping[str, float]]], *, metric: str) -> Figure | None:
    """Training loss and validation ``metric`` per evaluated epoch, one line per model."""
    models = {m: h for m, h in histories.items() if h}
    if not models:
        return None
    fig = MplFigure(figsize=(10, 3.2))
    ax_loss, ax_metric = fig.subplots(1, 2)
    for n, (model, history) in enumerate(models.items()):
        colour = PALETTE[n % len(PALETTE)]
        epochs = [row["epoch"] for row in history]
        ax_loss.plot(epochs, [row.get("loss", np.nan) for row in history], color=colour, label=model)
        ax_metric.plot(epochs, [row.get(metric, np.nan) for row in history], color=colour, label=model)
        values = [row.get(metric, -np.inf) for row in history]
        best = int(np.argmax(values))
        ax_metric.plot([epochs[best]], [values[best]], marker="o", color=colour, markersize=5)
    ax_loss.set_title("training loss (BPR)", fontsize=10)
    ax_metric.set_title(f"validation {metric} (dot: best epoch, weights kept)", fontsize=10)
    for ax in (ax_loss, ax_metric):
        ax.set_xlabel("epoch")
        _style(ax)
    ax_metric.legend(fontsize=8)
    fig.tight_layout()
    return render(fig, f"recommender training curves: loss and validation {metric} per epoch")


def grouped_bars(
    rows: Sequence[Mapping[str, Any]], *, label_key: str, metrics: Sequence[str], title: str
) -> Figure | None:
    """One group of bars per metric, one bar per row (ablation variants)."""
    rows = [r for r in rows if all(isinstance(r.get(m), (int, float)) for m in metrics)]
    if not rows:
        return None
    fig = MplFigure(figsize=(9, 3.4))
    ax = fig.subplots()
    x = np.arange(len(metrics))
    width = 0.8 / len(rows)
    for n, row in enumerate(rows):
        ax.bar(
            x + n * width,
            [float(row[m]) for m in metrics],
            width,
            label=str(row.get(label_key)),
            color=PALETTE[n % len(PALETTE)],
        )
    ax.set_xticks(x + width * (len(rows) - 1) / 2, list(metrics))
    ax.set_ylabel("test score")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    _style(ax)
    fig.tight_layout()
    return render(fig, title)


def curves(
    series: Mapping[str, tuple[Sequence[float], Mapping[str, Sequence[float]]]], *, xlabel: str, title: str
) -> Figure | None:
    """Line plots, one panel per metric: ``series[name] = (x, {metric: y})`` (noise curves)."""
    metrics = sorted({m for _, ys in series.values() for m in ys})
    if not metrics:
        return None
    fig = MplFigure(figsize=(4.2 * len(metrics), 3.0))
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics, strict=True):
        for n, (name, (xs, ys)) in enumerate(series.items()):
            if metric in ys:
                ax.plot(xs, ys[metric], marker="o", markersize=3, label=name, color=PALETTE[n % len(PALETTE)])
        ax.set_xlabel(xlabel)
        ax.set_title(metric, fontsize=10)
        _style(ax)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return render(fig, title)


def projection(
    xy: np.ndarray, groups: Sequence[str], order: Sequence[str], *, title: str, none_label: str
) -> Figure:
    """A scatter of 2-D points coloured by group; ``order`` lists the named groups (legend order),
    anything else is drawn grey as "other", ``none_label`` light grey."""
    colours = {g: PALETTE[n % len(PALETTE)] for n, g in enumerate(order)}
    fig = MplFigure(figsize=(8.5, 6.0))
    ax = fig.subplots()
    labels = np.asarray(groups, dtype=object)
    layers = [(none_label, NONE_COLOUR), ("other", OTHER_COLOUR), *((g, colours[g]) for g in order)]
    for label, colour in layers:
        if label == "other":
            mask = np.array([g not in colours and g != none_label for g in labels], dtype=bool)
        else:
            mask = labels == label
        if mask.any():
            ax.scatter(
                xy[mask, 0],
                xy[mask, 1],
                s=16,
                color=colour,
                label=f"{label} ({int(mask.sum())})",
                alpha=0.85,
                edgecolors="none",
            )
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    _style(ax)
    fig.tight_layout()
    return render(fig, title)
