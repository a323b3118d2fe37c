"""``report.html``: one self-contained page about one run.

Sections (:data:`SECTIONS`): the run (stages, timings, CPU and memory), graph
statistics, knowledge quality (facts per relation and source, LLM against gold,
quarantine and drop reasons, input problems), KGE metrics with the training curve,
recommenders with their training curves, the ablation, and a 2-D projection of the
item vectors. Only this run's figures are shown: a stage that did not run in this run
says so ("not run in this run") instead of showing an earlier run's numbers.

The file needs nothing else: figures are PNG ``data:`` URIs, the CSS is inline, there
is no script, and a Content-Security-Policy forbids the page any fetch.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg_enhance.config.models import STAGES, JobSpec
from kg_enhance.errors import StageError
from kg_enhance.graph.store import GraphStore
from kg_enhance.io.files import write_text
from kg_enhance.ontology.models import Ontology
from kg_enhance.report import figures
from kg_enhance.report.data import (
    RunView,
    colour_groups,
    drop_reasons,
    pca_2d,
    quarantine_reasons,
)
from kg_enhance.report.tables import fmt, key_values, mean_std, table
from kg_enhance.rundir import RunDir

#: section id -> title, in page order (tests look for every title)
SECTIONS: dict[str, str] = {
    "run": "Run",
    "graph": "Graph statistics",
    "quality": "Knowledge quality",
    "kge": "KGE metrics and training curve",
    "recommend": "Recommenders",
    "ablation": "Ablation",
    "projection": "Item embeddings in 2-D",
}

CSS = """
:root { --fg: #1d2329; --muted: #5f6b76; --line: #dde3e8; --bg: #ffffff; --head: #f3f6f8; --accent: #2c7fb8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); }
header { padding: 18px 32px 10px; border-bottom: 1px solid var(--line); background: var(--head); }
h1 { font-size: 22px; margin: 0 0 4px; }
.sub { color: var(--muted); margin: 0 0 8px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; font-weight: 600; }
main { padding: 8px 32px 40px; max-width: 1320px; }
section { border-bottom: 1px solid var(--line); padding: 10px 0 18px; }
h2 { font-size: 19px; margin: 14px 0 8px; }
h3 { font-size: 15px; margin: 16px 0 6px; color: #2a3540; }
p { margin: 6px 0; max-width: 980px; }
.note { color: #8a5a00; background: #fff6e0; border-left: 4px solid #e0a100; padding: 6px 10px; }
.hint { color: var(--muted); }
.grid { display: flex; flex-wrap: wrap; gap: 10px 28px; align-items: flex-start; }
table.data { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
table.data caption { caption-side: top; text-align: left; color: var(--muted); padding: 2px 0 4px; }
table.data th { background: var(--head); text-align: left; font-weight: 600; }
table.data th, table.data td { border: 1px solid var(--line); padding: 3px 8px; vertical-align: top; }
table.data td { text-align: left; max-width: 560px; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.data tbody tr:nth-child(even) { background: #fafbfc; }
figure { margin: 8px 0 12px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; }
.status-ok { color: #2d7a2d; font-weight: 600; }
code { background: var(--head); padding: 0 4px; border-radius: 3px; }
"""


@dataclass
class Page:
    """HTML fragments of one section."""

    key: str
    parts: list[str] = field(default_factory=list)

    def h3(self, text: str) -> None:
        self.parts.append(f"<h3>{_esc(text)}</h3>")

    def p(self, text: str, cls: str | None = None) -> None:
        """A paragraph; `backticks` become ``<code>``."""
        attr = f' class="{cls}"' if cls else ""
        body = _CODE.sub(r"<code>\1</code>", _esc(text))
        self.parts.append(f"<p{attr}>{body}</p>")

    def note(self, text: str) -> None:
        self.p(text, "note")

    def add(self, fragment: str) -> None:
        if fragment:
            self.parts.append(fragment)

    def grid(self, *fragments: str) -> None:
        kept = [f"<div>{f}</div>" for f in fragments if f]
        if kept:
            self.parts.append('<div class="grid">' + "".join(kept) + "</div>")

    def figure(self, fig: figures.Figure | None, caption: str | None = None) -> None:
        if fig is None:
            return
        self.parts.append(
            f'<figure><img src="{fig.data_uri}" alt="{_esc(fig.alt)}">'
            f"<figcaption>{_esc(caption or fig.alt)}</figcaption></figure>"
        )

    def html(self) -> str:
        return (
            f'<section id="{self.key}"><h2>{_esc(SECTIONS[self.key])}</h2>\n'
            + "\n".join(self.parts)
            + "\n</section>"
        )


_CODE = re.compile(r"`([^`]+)`")


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


# -- Run ------------------------------------------------------------------------------------------
def _run(view: RunView) -> Page:
    page = Page("run")
    r = view.report
    info: dict[str, Any] = {
        "job": r.get("job"),
        "namespace": r.get("namespace"),
        "run id": r.get("run_id"),
        "ontology": r.get("ontology"),
        "run folder": r.get("outputs_dir"),
        "page written": dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
    }
    previous = r.get("previous_run")
    if isinstance(previous, dict):
        info["previous run"] = (
            f"{previous.get('run_id')} was interrupted in {', '.join(previous.get('interrupted_in') or [])}"
        )
    rows, timeline = [], []
    for name in STAGES:
        st = view.status(name)
        this_run = st.get("run_id") == view.run_id and st.get("status") != "skipped"
        rows.append(
            {
                "stage": name,
                "status": st.get("status", "—"),
                "seconds": st.get("seconds") if this_run else None,
                "CPU seconds": st.get("cpu_seconds") if this_run else None,
                "peak RSS (MiB)": st.get("peak_rss_mib") if this_run else None,
                "peak RSS increase (MiB)": st.get("peak_rss_increase_mib") if this_run else None,
                "note": st.get("error") or (None if this_run else view.absence(name).split(": ", 1)[1]),
            }
        )
        if this_run:
            timeline.append({"name": name, **st})
    page.add(key_values(info))
    page.add(
        table(
            rows,
            caption="Stages in pipeline order. CPU seconds: user + system time of all threads during the stage; "
            "peak RSS: the process's high-water mark at the end of the stage; increase: how much the stage raised it.",
        )
    )
    page.figure(figures.stage_timeline(timeline))
    return page


# -- Graph statistics -------------------------------------------------------------------------------
def _graph(view: RunView) -> Page:
    page = Page("graph")
    g = view.section("graph")
    if g is None:
        page.note(view.absence("load"))
        return page
    degrees: dict[str, Any] = g.get("degrees") or {}
    share = g.get("items_with_facts_share")
    totals = {
        "nodes": g.get("nodes"),
        "edges": g.get("edges"),
        "items": g.get("items"),
        "items with facts": f"{fmt(g.get('items_with_facts'))} ({share:.1%})"
        if isinstance(share, (int, float))
        else g.get("items_with_facts"),
        "interactions written": g.get("interactions_written"),
        "facts written (edges)": g.get("facts_written"),
        "user facts": g.get("user_facts_written"),
        "stale facts deleted": g.get("stale_facts_deleted"),
        "rejected fact rows": g.get("rejected_facts"),
        "quarantined items": g.get("quarantined_items"),
        "orphan entities (no item, no user)": degrees.get("orphan_entities"),
        "duplicate candidates": g.get("duplicate_candidates"),
        "duplicate scan": _scan(g.get("duplicate_scan")),
        "write seconds": g.get("write_seconds"),
    }
    page.grid(
        key_values(totals, caption="totals"),
        table(_pairs(g.get("nodes_by_label"), "label", "nodes"), caption="nodes by label"),
        table(_pairs(g.get("edges_by_type"), "type", "edges"), caption="edges by type"),
    )
    page.h3("Degree distributions")
    dists: dict[str, Any] = {}
    if degrees.get("items_per_entity"):
        dists["items per entity"] = degrees["items_per_entity"]
    if degrees.get("entities_per_item"):
        dists["entities per item"] = degrees["entities_per_item"]
    for type_, dist in (degrees.get("items_per_entity_by_type") or {}).items():
        dists[f"items per {type_} entity"] = dist
    page.add(
        table(
            [
                {"distribution": name, **{k: v for k, v in d.items() if k != "buckets"}}
                for name, d in dists.items()
            ],
            ["distribution", "count", "zero", "mean", "p50", "p90", "p99", "max"],
        )
    )
    page.figure(
        figures.degree_buckets(
            {k: v for k, v in dists.items() if k in ("items per entity", "entities per item")}
        )
    )
    page.h3("Duplicate candidates")
    dup = g.get("duplicate_candidates_top") or []
    if dup:
        page.add(
            table(
                dup,
                ["a", "b", "score", "key_a", "key_b"],
                caption=f"{fmt(g.get('duplicate_candidates'))} same-type entity pairs with similar names; the most similar:",
            )
        )
    elif (g.get("duplicate_scan") or {}).get("status") == "skipped":
        page.p("Not scanned in this load: it made no new entity (see the duplicate scan above).", "hint")
    else:
        page.p("No same-type entity pairs with similar names.", "hint")
    resolution = g.get("resolution") or {}
    if resolution:
        page.h3("Entity resolution")
        page.grid(
            table(
                _pairs(resolution.get("by_reason"), "how a name was resolved", "names"),
                caption=f"{fmt(resolution.get('names'))} names",
            ),
            table(resolution.get("fuzzy_merges") or [], ["name", "into", "score"], caption="fuzzy merges"),
        )
    return page


def _scan(scan: Any) -> str | None:
    """``graph.duplicate_scan`` in words (absent in older reports)."""
    if not isinstance(scan, Mapping):
        return None
    if scan.get("status") == "skipped":
        return "skipped: this load made no new entity"
    return f"{scan.get('status')}: {fmt(scan.get('scanned'))} of {fmt(scan.get('entities'))} entities"


def _pairs(mapping: Any, key: str, value: str) -> list[dict[str, Any]]:
    if not isinstance(mapping, Mapping):
        return []
    return [{key: k, value: v} for k, v in sorted(mapping.items(), key=lambda kv: (-_num(kv[1]), str(kv[0])))]


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


# -- Knowledge quality ------------------------------------------------------------------------------
def f1(precision: float | None, recall: float | None) -> float | None:
    """The harmonic mean of precision and recall (``None`` when either is unknown)."""
    if precision is None or recall is None:
        return None
    if precision + recall == 0:
        return 0.0
    return round(2 * precision * recall / (precision + recall), 4)


def gold_rows(llm_vs_gold: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``graph.llm_vs_gold`` as rows: one per gold source and relation (overall last), with F1."""
    rows = []
    for source, relations in llm_vs_gold.items():
        if not isinstance(relations, Mapping):
            continue
        ordered = [r for r in relations if r != "overall"] + (["overall"] if "overall" in relations else [])
        for relation in ordered:
            m = relations[relation]
            if not isinstance(m, Mapping):
                continue
            p, r = m.get("precision"), m.get("recall")
            rows.append(
                {
                    "gold source": source,
                    "relation": relation,
                    "items": m.get("items"),
                    "LLM facts": m.get("llm_facts"),
                    "gold facts": m.get("gold_facts"),
                    "matched": m.get("matched"),
                    "precision": p,
                    "recall": r,
                    "F1": m.get("f1", f1(p, r)),
                }
            )
    return rows


def _quality(view: RunView) -> Page:
    page = Page("quality")
    page.h3("Extraction")
    e = view.section("extract")
    if e is None:
        page.note(view.absence("extract"))
    elif not e.get("enabled", True):
        page.p("LLM extraction is off for this job (llm.enabled: false): no LLM facts, quarantine or drops.")
    else:
        cols = [
            "items",
            "llm_calls",
            "cache_hits",
            "extracted",
            "quarantined",
            "quarantine_remembered",
            "repairs",
            "retries",
            "facts",
            "dropped_facts",
            "tokens",
            "seconds",
        ]
        rows = [{"subjects": "items", **{c: e.get(c) for c in cols}}]
        if isinstance(e.get("users"), Mapping):
            rows.append({"subjects": "users", **{c: e["users"].get(c) for c in cols}})
        page.add(table(rows, ["subjects", *cols]))
        page.add(
            key_values(
                {
                    "model (configured)": e.get("model"),
                    "model (served)": e.get("served_model"),
                    "structured output": e.get("structured_output"),
                    "catalog items": e.get("catalog_items"),
                    "cost": e.get("cost"),
                }
            )
        )
        for source, q in (e.get("quality") or {}).items():
            cols = ["llm_facts", "gold_facts", "matched", "precision", "recall", "f1"]
            rows = [{"scope": "overall", **{c: (q.get("overall") or {}).get(c) for c in cols}}]
            for part, label in (("by_relation", "relation"), ("by_type", "type")):
                for name, m in (q.get(part) or {}).items():
                    rows.append({"scope": f"{label} {name}", **{c: m.get(c) for c in cols}})
            confusion = "; ".join(
                f"{llm_type} -> {', '.join(f'{t} {n}' for t, n in gold.items())}"
                for llm_type, gold in (q.get("type_confusion") or {}).items()
            )
            page.add(
                table(
                    rows,
                    ["scope", *cols],
                    caption=f"Extracted item facts against {source} (names compared after normalisation, no entity "
                    "resolution; only items and relations the gold source covers are checkable; per type a right "
                    f"name with another type is a miss). {q.get('names_with_other_type')} of "
                    f"{q.get('names_in_gold')} names the gold source states had another type"
                    + (f": LLM type -> gold type: {confusion}." if confusion else ".")
                    + (f" Scored over {e['quality_scope']}." if e.get("quality_scope") else ""),
                )
            )

    page.h3("Facts per relation and source")
    g = view.section("graph")
    if g is None:
        page.note(view.absence("load"))
    else:
        by_rel: dict[str, dict[str, int]] = g.get("facts_by_relation_source") or {}
        if by_rel:
            sources = sorted({s for counts in by_rel.values() for s in counts})
            rows = [
                {"relation": rel, **{s: counts.get(s) for s in sources}, "total": sum(counts.values())}
                for rel, counts in sorted(by_rel.items(), key=lambda kv: -sum(kv[1].values()))
            ]
            page.add(
                table(rows, ["relation", *sources, "total"], caption="facts read, before entity resolution")
            )
            page.figure(figures.stacked_counts(by_rel, title="facts per relation, by source"))
        else:
            page.add(
                table(_pairs(g.get("edges_by_type"), "relationship type", "edges"), caption="edges by type")
            )
        page.h3("LLM facts against the gold facts")
        rows = gold_rows(g.get("llm_vs_gold") or {})
        if rows:
            page.add(
                table(
                    rows,
                    caption="Precision: LLM facts that a gold source also states, on the items and relations it covers; "
                    "recall: gold facts of the items the LLM saw that it found; F1: their harmonic mean.",
                )
            )
        else:
            page.p(
                "No comparison in this run: it needs LLM extraction (llm.enabled) and a gold fact source "
                "(source.facts or graph.compare_sources).",
                "hint",
            )

    page.h3("Quarantined subjects")
    if not view.ran("extract"):
        page.note(view.absence("extract"))
    else:
        quarantined = quarantine_reasons(view.quarantine())
        if quarantined:
            page.add(table(quarantined, caption="subjects whose answers stayed invalid after every repair"))
        else:
            page.p("No subject was quarantined.", "hint")
        page.h3("Dropped facts")
        dropped = drop_reasons(view.dropped())
        if dropped:
            page.add(
                table(
                    dropped,
                    caption="single facts removed by the semantic checks (or kept with a note), by reason",
                )
            )
        else:
            page.p("No fact was dropped.", "hint")

    page.h3("Input issues")
    rows = []
    for stage, section in (("load", "graph"), ("recommend", "recommend")):
        sec = view.section(section)
        if sec is None:
            continue
        issues = sec.get("input_issues") or {}
        for path, reasons in (issues.get("files") or {}).items():
            for reason, count in reasons.items():
                rows.append(
                    {
                        "read by": stage,
                        "file": path,
                        "reason": reason,
                        "rows": count.get("count"),
                        "first rows": count.get("first_rows"),
                    }
                )
    if rows:
        page.add(
            table(
                rows, caption="problems counted in the input files (row 1 is the first row under the header)"
            )
        )
    elif view.ran("load") or view.ran("recommend"):
        page.p("No input problems were counted.", "hint")
    else:
        page.note(view.absence("load"))
    return page


# -- KGE --------------------------------------------------------------------------------------------
def _kge(view: RunView) -> Page:
    page = Page("kge")
    k = view.section("kge")
    if k is None:
        page.note(view.absence("embed"))
        return page
    metrics = k.get("metrics") or {}
    if any(v is not None for v in metrics.values()):
        page.p(f"Held-out link prediction: {k.get('evaluation')}.", "hint")
        page.add(table([metrics]))
    else:
        why = str(k.get("evaluation") or "nothing was held out").removeprefix("none: ")
        page.p(f"No held-out metrics (MRR and Hits@k are null): {why}.", "hint")
    written = k.get("written_back") or {}
    settings = {
        "model": k.get("model"),
        "dimension": k.get("dim"),
        "seed": k.get("seed"),
        "device": k.get("device"),
        "epochs run": k.get("epochs_run"),
        "best validation epoch": k.get("best_epoch"),
        "training flags": _training_flags(k) or ("none" if k.get("best_epoch") is not None else "n/a"),
        "final loss": k.get("final_loss"),
        "train seconds": k.get("train_seconds"),
        "triples (train / test)": f"{fmt(k.get('triples'))} ({fmt(k.get('train_triples'))} / {fmt(k.get('test_triples'))})",
        "entities / relations": f"{fmt(k.get('entities'))} / {fmt(k.get('relations'))}",
        "vectors written back (items / entities)": f"{fmt(written.get('item'))} / {fmt(written.get('entity'))}",
        "graph fingerprint": k.get("graph_fingerprint"),
        "PyKEEN": k.get("pykeen_version"),
    }
    if _training_flags(k):
        page.note(
            f"The embeddings are {_training_flags(k)}: best validation at epoch {k.get('best_epoch')} of "
            f"{k.get('epochs_run')} run (under-trained: raise `kge.epochs`; stopped too early, within the first "
            "3 evaluations: lower `kge.eval_every` or the learning rate)."
        )
    losses = k.get("losses") or []
    fig = figures.loss_curve(losses, title=f"{k.get('model')} training loss per epoch")
    if fig is None:
        page.add(key_values(settings))
        page.p("No per-epoch losses in this report.", "hint")
    else:
        page.grid(key_values(settings), f'<figure><img src="{fig.data_uri}" alt="{_esc(fig.alt)}"></figure>')
    return page


def _training_flags(rep: Mapping[str, Any]) -> str:
    """``under-trained`` and/or ``stopped too early`` from a model's (or the KGE's) report, or ""."""
    flags = [
        label
        for key, label in (("under_trained", "under-trained"), ("stopped_too_early", "stopped too early"))
        if rep.get(key) is True
    ]
    return ", ".join(flags)


# -- Recommenders -----------------------------------------------------------------------------------
def _values(rep: Mapping[str, Any], *path: str) -> list[float]:
    """A metric's values: one per seed when the report has ``seeds``, else the value (or its list)."""

    def get(node: Any) -> Any:
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node

    seeds = rep.get("seeds")
    found: Iterable[Any]
    if isinstance(seeds, list) and seeds and all(isinstance(s, Mapping) for s in seeds):
        found = [get(s) for s in seeds]
    else:
        value = get(rep)
        found = value if isinstance(value, list) else [value]
    return [float(v) for v in found if isinstance(v, (int, float))]


def _recommend(view: RunView) -> Page:
    page = Page("recommend")
    r = view.section("recommend")
    if r is None:
        page.note(view.absence("recommend"))
        return page
    k = r.get("k", 20)
    models = {
        m: rep for m, rep in r.items() if isinstance(rep, Mapping) and isinstance(rep.get("test"), Mapping)
    }
    columns: list[tuple[str, tuple[str, ...]]] = [
        (f"valid NDCG@{k}", ("valid", f"ndcg@{k}")),
        (f"Recall@{k}", ("test", f"recall@{k}")),
        (f"NDCG@{k}", ("test", f"ndcg@{k}")),
        (f"Hit@{k}", ("test", f"hit@{k}")),
        (f"coverage@{k}", ("test", f"coverage@{k}")),
        (f"long-tail NDCG@{k}", ("slices", "long_tail", f"ndcg@{k}")),
        (f"few-interaction NDCG@{k}", ("slices", "few_interactions", f"ndcg@{k}")),
    ]
    seeds = max((len(_values(rep, "test", f"ndcg@{k}")) for rep in models.values()), default=0)
    rows = []
    for model, rep in models.items():
        row: dict[str, Any] = {"model": model + (" (best)" if model == r.get("best_model") else "")}
        for label, path in columns:
            row[label] = mean_std(_values(rep, *path))
        row.update(
            {
                "epochs": rep.get("epochs"),
                "best epoch": rep.get("best_epoch"),
                "train seconds": rep.get("train_seconds"),
                "flags": _training_flags(rep),
            }
        )
        rows.append(row)
    split = r.get("split") or {}
    how = (
        f"mean ± std over {seeds} seeds"
        if seeds > 1
        else f"one seed (recommender.seed {split.get('training_seed', split.get('seed'))}): plain values; mean ± std shows when a report holds several seeds"
    )
    page.add(
        table(
            rows,
            caption=f"Test metrics at K={k} on the {split.get('kind')} split, full ranking; {how}. "
            + (
                f"The last {r.get('tail_slots')} positions of every list are reserved for long-tail items "
                "(recommender.tail_slots), for every model alike. "
                if r.get("tail_slots")
                else ""
            )
            + "The best model (by validation NDCG) serves the top-K.",
        )
    )
    flagged = [model for model, rep in models.items() if _training_flags(rep)]
    if flagged:
        page.note(
            f"Not results yet: {', '.join(flagged)} (see flags). Under-trained: the best validation epoch was "
            "the last one allowed (raise `recommender.epochs`). Stopped too early: the best validation came "
            "within the first 3 evaluations (lower `recommender.eval_every` or the learning rate)."
        )
    page.figure(
        figures.training_curves(
            {m: rep.get("history") or [] for m, rep in models.items()}, metric=f"ndcg@{k}"
        )
    )
    serving = r.get("serving") or {}
    page.grid(
        key_values(
            {
                "users / items": f"{fmt(split.get('users'))} / {fmt(split.get('items'))}",
                "split seed / training seed": f"{split.get('seed')} / {split.get('training_seed', split.get('seed'))}",
                "train / valid / test positives": f"{fmt(split.get('train'))} / {fmt(split.get('valid'))} / {fmt(split.get('test'))}",
                "positive threshold": r.get("positive_threshold"),
                "long-tail items": split.get("long_tail_items"),
                "tail slots (of K)": f"{r.get('tail_slots') or 0} of {k}",
                "few-interaction users": split.get("few_interaction_users"),
                "KG item coverage": r.get("kg_item_coverage"),
                "KG entities": r.get("kg_entities"),
                "device": r.get("device"),
            },
            caption="split",
        ),
        key_values(
            {
                "best model": r.get("best_model"),
                "top-K rows": serving.get("topk_rows"),
                "RECOMMENDED edges": serving.get("recommended_edges"),
                "explained share": serving.get("explained_share"),
            },
            caption="serving",
        )
        if serving
        else "",
    )
    return page


# -- Ablation ---------------------------------------------------------------------------------------
_NOISE_X = ("noise", "noise_rate", "noise_level", "rate", "level", "fraction")


def noise_series(noise: Any) -> tuple[str, dict[str, tuple[list[float], dict[str, list[float]]]]] | None:
    """Noise curves from ``ablation.noise`` (a list of rows with a noise level and metrics, grouped by
    ``variant`` or ``model``; or such lists by name), or ``None``."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    if isinstance(noise, list):
        for row in noise:
            if isinstance(row, Mapping):
                groups.setdefault(str(row.get("variant") or row.get("model") or "KG"), []).append(row)
    elif isinstance(noise, Mapping):
        rows_of = noise.get("rows") if isinstance(noise.get("rows"), list) else None
        if rows_of is not None:
            return noise_series(rows_of)
        for name, rows in noise.items():
            if isinstance(rows, list):
                groups[str(name)] = [r for r in rows if isinstance(r, Mapping)]
    series: dict[str, tuple[list[float], dict[str, list[float]]]] = {}
    xkey = ""
    for name, rows in groups.items():
        xkey = next(
            (x for x in _NOISE_X if rows and all(isinstance(r.get(x), (int, float)) for r in rows)), ""
        )
        if not xkey:
            continue
        rows = sorted(rows, key=lambda r: float(r[xkey]))
        metrics = [m for m in rows[0] if "@" in m and all(isinstance(r.get(m), (int, float)) for r in rows)]
        series[name] = ([float(r[xkey]) for r in rows], {m: [float(r[m]) for r in rows] for m in metrics[:4]})
    return (xkey, series) if series else None


def _ablation(view: RunView) -> Page:
    page = Page("ablation")
    a = view.report.get("ablation")
    if isinstance(a, Mapping) and not a.get("rows") and a.get("noise"):
        _noise_curves(page, a)  # only `ablate --fact-noise` has run on this folder
        return page
    if not isinstance(a, Mapping) or not a.get("rows"):
        page.p(
            "No ablation in this report: `kg-enhance ablate JOB` compares no KG, gold KG, LLM KG and both "
            "on the job's split and adds its table here.",
            "hint",
        )
        return page
    k = a.get("k", 20)
    split = a.get("split") or {}
    page.p(
        f"From the last `kg-enhance ablate` of this run folder: its own training on the {split.get('kind')} split "
        f"(split seed {split.get('seed')}, {fmt(split.get('users'))} users × {fmt(split.get('items'))} items), "
        f"{fmt(a.get('seconds'))} s; not one of this run's stages.",
        "hint",
    )
    metrics = [f"ndcg@{k}", f"recall@{k}", f"long_tail_ndcg@{k}", f"few_interactions_ndcg@{k}"]
    rows = [dict(r) for r in a["rows"] if isinstance(r, Mapping)]
    page.add(
        table(
            rows,
            [
                "variant",
                "model",
                "sources",
                "kg_triples",
                "kg_item_coverage",
                "kge_mrr",
                *metrics,
                "train_seconds",
                "skipped",
            ],
        )
    )
    page.figure(
        figures.grouped_bars(
            [r for r in rows if "skipped" not in r],
            label_key="variant",
            metrics=metrics,
            title=f"KG ablation at K={k} (test split)",
        )
    )
    _noise_curves(page, a)
    return page


def _noise_curves(page: Page, a: Mapping[str, Any]) -> None:
    noise = noise_series(a.get("noise") or a.get("noise_curves"))
    if noise is not None:
        xkey, series = noise
        page.h3("Noise curves")
        page.figure(figures.curves(series, xlabel=xkey, title="metrics as noise is added to the KG"))


# -- Projection -------------------------------------------------------------------------------------
def _projection(view: RunView, colour_by: str | None) -> Page:
    page = Page("projection")
    emb = view.embeddings()
    if emb is None:
        page.note(view.absence("embed"))
        return page
    ids, matrix = emb.item_vectors()
    if len(ids) < 3:
        page.p(f"Only {len(ids)} item vectors: nothing to project.", "hint")
        return page
    facts = view.item_facts()
    counts = facts.counts()
    if colour_by is not None and colour_by not in counts:
        page.note(
            f"No item facts of relation {colour_by!r}; relations with facts: {', '.join(sorted(counts)) or 'none'}."
        )
        colour_by = None
    relation = colour_by or (max(sorted(counts), key=lambda r: counts[r]) if counts else None)
    xy, share = pca_2d(matrix)
    meta = emb.metadata
    title = (
        f"{len(ids)} item vectors of {meta.get('model')} (dim {emb.dim}); "
        f"PCA: PC 1 {share[0]:.0%}, PC 2 {share[1]:.0%} of the variance"
    )
    if relation is None:
        page.figure(figures.projection(xy, ["item"] * len(ids), ["item"], title=title, none_label="-"))
        page.p("No item facts found to colour the items by.", "hint")
        return page
    groups, named, none_label = colour_groups(ids, facts, relation)
    page.figure(
        figures.projection(xy, groups, named, title=title, none_label=none_label),
        caption=f"Each item is coloured by its {relation} entity shared by the most items (facts from {facts.origin})"
        + (
            f"; groups beyond the {len(named)} largest are 'other'"
            if set(groups) - {*named, none_label}
            else ""
        )
        + ". Colour by another relation with: kg-enhance report JOB --colour-by RELATION.",
    )
    return page


# -- the page ---------------------------------------------------------------------------------------
def build_html(view: RunView, *, colour_by: str | None = None) -> str:
    """The whole page for one run."""
    builders: list[Callable[[], Page]] = [
        lambda: _run(view),
        lambda: _graph(view),
        lambda: _quality(view),
        lambda: _kge(view),
        lambda: _recommend(view),
        lambda: _ablation(view),
        lambda: _projection(view, colour_by),
    ]
    pages = [build() for build in builders]
    r = view.report
    title = f"kg_enhance run report: {r.get('job')} ({r.get('run_id')})"
    nav = " ".join(f'<a href="#{key}">{_esc(name)}</a>' for key, name in SECTIONS.items())
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{_esc(title)}</h1>"
        f'<p class="sub">job {_esc(r.get("job"))}, namespace {_esc(r.get("namespace"))}, '
        f"ontology {_esc(r.get('ontology'))}</p>\n<nav>{nav}</nav></header>\n<main>\n"
        + "\n".join(p.html() for p in pages)
        + "\n</main>\n</body>\n</html>\n"
    )


def write_html_report(
    run: RunDir,
    *,
    job: JobSpec | None = None,
    ontology: Ontology | None = None,
    store: GraphStore | None = None,
    colour_by: str | None = None,
) -> Path:
    """Write ``report.html`` into the run folder from its ``report.json`` (and files); returns its path.

    ``job`` and ``ontology`` let the page read the catalog titles and facts (to colour
    the item projection); ``store`` reads the facts from the graph instead.
    """
    report = run.read_report()
    if not report:
        raise StageError(
            f"report: {run.report_path} not found or unreadable; run the job first (`kg-enhance run JOB`)"
        )
    view = RunView(run=run, report=report, job=job, ontology=ontology, store=store)
    return write_text(run.report_html, build_html(view, colour_by=colour_by))
