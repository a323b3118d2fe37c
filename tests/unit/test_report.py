"""The run report (``report.html``), progress output in logs, and names in recommendations.

One run of the whole pipeline on the in-memory graph store (no services), with a
scripted LLM endpoint so that the report has LLM facts, a quarantined item and dropped
facts to show; tiny epochs.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from kg_enhance import api
from kg_enhance.cli import main
from kg_enhance.progress import Progress
from kg_enhance.rec.serve import PrecomputedRecommender
from kg_enhance.report import SECTIONS, build_html
from kg_enhance.report.data import STAGE_OF_SECTION, RunView, split_drop_note
from kg_enhance.report.html import f1, gold_rows, noise_series
from kg_enhance.rundir import RunDir
from kg_enhance.stages import STAGE_REGISTRY
from tests.support.helpers import REPO, write_job
from tests.support.report_run import SMALL, ReportRun, report_run
from tests.support.scripted_server import ScriptedServer, Step


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ReportRun:
    return report_run(tmp_path_factory.mktemp("report"))


# -- report.html ----------------------------------------------------------------------------------
def test_report_html_is_one_self_contained_file_with_every_section(run: ReportRun) -> None:
    text = run.text
    assert run.html == RunDir.at(run.result.run.root).report_html
    for key, title in SECTIONS.items():
        assert f'<section id="{key}"><h2>{title}</h2>' in text, title
    # nothing to fetch: no external script, stylesheet, image, font or frame; a CSP forbids fetches
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", text, re.I)
    assert "@import" not in text and "<link" not in text.lower() and "<script" not in text.lower()
    assert "default-src 'none'" in text
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    # timeline, degrees, facts per relation, KGE loss, recommender curves, projection
    assert len(images) >= 6
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert len(re.findall(r"<img ", text)) == len(images)  # every image is embedded


def test_report_shows_this_runs_quality_figures(run: ReportRun) -> None:
    text = run.text
    quality = text.split('<section id="quality">')[1].split("</section>")[0]
    # LLM against HetRec, with F1 added to precision and recall
    assert "<th>F1</th>" in quality and "DIRECTED_BY" in quality
    # the quarantined item and the drop reasons, with examples
    assert "item 2 (3 attempts)" in quality
    assert "the item itself (self-loop)" in quality and "1: DIRECTED_BY &#x27;Toy Story&#x27;" in quality
    assert "duplicate" in quality and "looks like a copied" in quality
    assert "Input issues" in quality
    # the per-stage resource use and curves the report is built from
    stages = run.result.report["stages"]
    for name in ("extract", "load", "embed", "recommend", "export"):
        assert stages[name]["cpu_seconds"] >= 0 and stages[name]["peak_rss_mib"] > 0
        assert stages[name]["peak_rss_increase_mib"] >= 0
    kge = run.result.report["kge"]
    assert len(kge["losses"]) == kge["epochs_run"] and kge["losses"][-1] == pytest.approx(kge["final_loss"])
    history = run.result.report["recommend"]["bpr_mf"]["history"]
    assert history and {"epoch", "loss", "ndcg@20"} <= set(history[0])
    assert run.result.report["graph"]["facts_by_relation_source"]["DIRECTED_BY"]["llm"] >= 1


def test_gold_rows_add_f1_where_it_is_missing() -> None:
    rows = gold_rows(
        {"hetrec": {"overall": {"precision": 0.5, "recall": 0.25}, "X": {"precision": None, "recall": 0.0}}}
    )
    assert [r["relation"] for r in rows] == ["X", "overall"]  # overall last
    assert rows[1]["F1"] == pytest.approx(1 / 3, abs=1e-4) and rows[0]["F1"] is None
    assert f1(0.0, 0.0) == 0.0


def test_stages_not_run_in_this_run_are_shown_as_such(run: ReportRun) -> None:
    """Like `--only recommend` after a full run: report.json marks the others skipped and leaves their sections out."""
    report = json.loads(run.result.run.report_path.read_text())
    for name in ("extract", "load", "embed", "export"):
        report["stages"][name] = {"status": "skipped", "last_ok_run_id": report["run_id"]}
        report.pop(STAGE_REGISTRY[name].section, None)
    report["run_id"] = report["stages"]["recommend"]["run_id"] = "later-run"
    page = build_html(RunView(run=run.result.run, report=report))
    for key in ("graph", "kge", "projection"):
        section = page.split(f'<section id="{key}">')[1].split("</section>")[0]
        assert "not run in this run" in section, key
        assert "<img" not in section, key  # no figure of an earlier run
    assert "<img" in page.split('<section id="recommend">')[1].split("</section>")[0]
    # a failed stage says so, with its error
    report["stages"]["recommend"].update(status="failed", error="boom: out of memory")
    report.pop("recommend")
    page = build_html(RunView(run=run.result.run, report=report))
    assert "recommend: failed in this run: boom: out of memory" in page


def test_training_flags_are_shown_for_each_model_and_the_embeddings(run: ReportRun) -> None:
    report = json.loads(run.result.run.report_path.read_text())
    models = [m for m in ("bpr_mf", "lightgcn", "kg_bpr", "kg_lightgcn") if m in report["recommend"]]
    for m in models:
        report["recommend"][m].update(under_trained=False, stopped_too_early=False)
    report["recommend"][models[0]].update(under_trained=True, stopped_too_early=True)
    report["kge"].update(best_epoch=10, under_trained=False, stopped_too_early=True)
    page = build_html(RunView(run=run.result.run, report=report))
    rec = page.split('<section id="recommend">')[1].split("</section>")[0]
    rows = {m: next(r for r in rec.split("<tr>") if f"<td>{m}" in r) for m in models}
    assert "<td>under-trained, stopped too early</td>" in rows[models[0]]
    assert "stopped too early" not in rows[models[1]] and "under-trained" not in rows[models[1]]
    assert f"Not results yet: {models[0]} (see flags)" in rec
    kge = page.split('<section id="kge">')[1].split("</section>")[0]
    assert "stopped too early" in kge and "best validation at epoch 10" in kge
    report["kge"]["stopped_too_early"] = False
    page = build_html(RunView(run=run.result.run, report=report))
    kge = page.split('<section id="kge">')[1].split("</section>")[0]
    assert "stopped too early" not in kge


def test_section_names_follow_the_stage_registry() -> None:
    assert STAGE_OF_SECTION == {stage.section: name for name, stage in STAGE_REGISTRY.items()}


def test_ablation_table_and_noise_curves_come_from_the_report(run: ReportRun) -> None:
    report = json.loads(run.result.run.report_path.read_text())
    rows = [
        {
            "variant": v,
            "model": "kg_lightgcn",
            "kg_triples": n,
            "ndcg@20": s,
            "recall@20": s,
            "long_tail_ndcg@20": s,
            "few_interactions_ndcg@20": s,
        }
        for v, n, s in (("no_kg", 0, 0.2), ("gold", 1500, 0.25))
    ] + [{"variant": "llm", "kg_triples": 3, "skipped": "too few facts"}]
    noise = [{"variant": "gold", "noise": x, "ndcg@20": 0.25 - x / 10} for x in (0.0, 0.2, 0.5)]
    report["ablation"] = {"k": 20, "split": {"kind": "user_random", "seed": 7}, "rows": rows, "noise": noise}
    section = build_html(RunView(run=run.result.run, report=report)).split('<section id="ablation">')[1]
    section = section.split("</section>")[0]
    assert "too few facts" in section and "Noise curves" in section and section.count("<img") == 2
    assert noise_series({"rows": noise}) == (
        "noise",
        {"gold": ([0.0, 0.2, 0.5], {"ndcg@20": [0.25, 0.23, 0.2]})},
    )


def test_drop_notes_split_into_fact_and_reason() -> None:
    assert split_drop_note(
        "PRODUCED_IN 'title: USA': looks like a copied 'field: value' pair, not a name"
    ) == (
        "PRODUCED_IN 'title: USA'",
        "looks like a copied 'field: value' pair, not a name",
    )
    assert split_drop_note("X 'a': confidence 1.5 outside [0, 1], ignored (fact kept)")[1] == (
        "confidence N outside [0, 1], ignored (fact kept)"
    )


def test_report_command_and_colour_relation(run: ReportRun) -> None:
    got = CliRunner().invoke(main, ["report", str(run.job), "--colour-by", "DIRECTED_BY"])
    assert got.exit_code == 0, got.output
    assert got.output.strip() == f"wrote {run.html}"
    projection = run.text.split('<section id="projection">')[1]
    assert "coloured by its DIRECTED_BY entity" in projection
    again = CliRunner().invoke(main, ["report", str(run.job), "--colour-by", "NOPE"])
    assert again.exit_code == 0 and "No item facts of relation &#x27;NOPE&#x27;" in run.text
    api.report(run.job)  # back to the default (the relation with the most facts)
    assert "coloured by its HAS_GENRE entity" in run.text


def test_report_without_a_run_is_a_one_line_error(tmp_path: Path) -> None:
    job = write_job(tmp_path, llm_enabled=False)
    got = CliRunner().invoke(main, ["report", str(job)])
    assert got.exit_code == 8 and "run the job first" in got.output


# -- names in recommendations -------------------------------------------------------------------
def test_recommendations_carry_titles_and_entity_names(run: ReportRun) -> None:
    table = pd.read_parquet(run.result.run.topk)
    assert {"title", "via_titles", "via_names"} <= set(table.columns)
    user = str(table["user_id"].iloc[0])
    recs = api.recommend(user, 10, job=run.job)
    titles = dict(
        pd.read_csv(REPO / "kg_enhance/datasets/movielens_demo/movies.csv", dtype=str)[
            ["movieId", "title"]
        ].values
    )
    assert [r.title for r in recs] == [titles[r.item_id] for r in recs]
    explained = [r for r in recs if r.because]
    assert explained
    names = {e["key"]: e["name"] for e in run.store.entity_keys()}
    for rec in explained:
        assert len(rec.because_names) == len(rec.because)
        for (item, key), (title, name) in zip(rec.because, rec.because_names, strict=True):
            assert title == titles[item] and name == names[key]
    got = CliRunner().invoke(main, ["recommend", str(run.job), user, "-k", "3"])
    assert got.exit_code == 0 and len(got.output.splitlines()) == 3, got.output  # one line per item
    assert titles[recs[0].item_id] in got.output and recs[0].item_id in got.output
    first = explained[0]
    if first.rank <= 3:
        title, name = first.because_names[0]
        assert f"because: {title} [{first.because[0][0]}] via {name} [{first.because[0][1]}]" in got.output


def test_old_top_k_tables_without_names_stay_readable(run: ReportRun, tmp_path: Path) -> None:
    old = RunDir.at(tmp_path / "old")
    old.folder("recommend")
    pd.read_parquet(run.result.run.topk).drop(columns=["title", "via_titles", "via_names"]).to_parquet(
        old.topk
    )
    user = str(pd.read_parquet(old.topk)["user_id"].iloc[0])
    recs = PrecomputedRecommender(old.root).recommend(user, 20)
    assert all(r.title is None for r in recs)
    assert all(r.because_names == r.because for r in recs)  # ids stand in for the missing names


# -- progress in a terminal and in a log ------------------------------------------------------------
def test_progress_logs_a_line_every_tenth_and_a_last_line(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    caplog.set_level(logging.INFO, logger="kg_enhance.progress")
    bar: Progress[int] = Progress(range(100), desc="work", unit="item", tty=False, clock=lambda: now[0])
    for _ in bar:
        now[0] += 0.5
    bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and lines[0].startswith("work: 10/100 item (10%) in 5s, 2 item/s, ETA 45s")
    assert lines[-1] == "work: done, 100/100 item in 50s, 2 item/s"
    caplog.clear()
    # without a total: one line every 30 s; an early stop (break) counts the last item
    slow: Progress[int] = Progress(
        iter(range(10)), desc="slow", unit="epoch", tty=False, clock=lambda: now[0]
    )
    for n in slow:
        now[0] += 20
        slow.set_postfix(loss="0.5")
        if n == 3:
            break
    slow.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "slow: 2 epoch in 40s, 20 s/epoch, loss=0.5",
        "slow: 4 epoch in 1m20s, 20 s/epoch, loss=0.5",
        "slow: done, 4 epoch in 1m20s, 20 s/epoch, loss=0.5",
    ]
    caplog.clear()
    quiet: Progress[int] = Progress(range(5), desc="off", enabled=False, tty=False)
    assert list(quiet) == [0, 1, 2, 3, 4]
    quiet.close()
    assert caplog.records == [] and not quiet.bar


#: runs `kg-enhance run JOB` in a fresh process on the in-memory store (the CLI's own logging set-up)
_CLI_ON_MEMORY = textwrap.dedent(
    """
    import sys
    from kg_enhance.graph.memory import InMemoryGraphStore
    from kg_enhance.graph.store import Neo4jStore
    from kg_enhance.cli import main

    store = InMemoryGraphStore(namespace="t")
    Neo4jStore.for_job = classmethod(lambda cls, job: store)  # no Neo4j: the run's graph lives in memory
    main(sys.argv[1:])
    """
)


def test_a_run_logged_to_a_pipe_has_progress_lines_and_no_carriage_returns(tmp_path: Path) -> None:
    job = write_job(tmp_path, llm_enabled=False, extra=SMALL)
    got = subprocess.run(
        [sys.executable, "-c", _CLI_ON_MEMORY, "run", str(job)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert got.returncode == 0, got.stderr[-3000:]
    log = got.stderr
    assert log.count("\r") == 0 and "\x1b[" not in log  # no bar redraws, no terminal escapes
    progress = [line for line in log.splitlines() if "kg_enhance.progress" in line]
    assert any(re.search(r"train bpr_mf: \d/4 epoch \(\d+%\) in \d+s, .*ETA", line) for line in progress), log
    assert any("train kg_lightgcn: done, 4/4 epoch in" in line for line in progress), log
    assert "report:" in got.stdout and "recommend bpr_mf:" in got.stdout


def test_extraction_progress_lines_without_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr("kg_enhance.progress.on_tty", lambda stream=None: False)  # even under pytest -s
    caplog.set_level(logging.INFO, logger="kg_enhance.progress")
    with ScriptedServer([Step(text='{"facts": []}')] * 10) as server:
        job = write_job(tmp_path, item_limit=10)
        job.write_text(job.read_text().replace("base_url: http", f"base_url: {server.url}\n  # http"))
        api.run_job(job, until="extract", progress=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "kg_enhance.progress"]
    assert lines[0].startswith("extract items: 1/10 item (10%)") and lines[-1].startswith(
        "extract items: done, 10/10 item"
    )
    assert len(lines) == 10  # 10%, ..., 90%, done
