"""Batch extraction against a scripted OpenAI Batch API (real HTTP, real ``openai`` client, real SQLite cache).

No provider with a Batch API is reachable here, so :class:`ScriptedBatchServer` plays
one: files, batches, output and error files, an expiry with partial results, failed
lines. The 1,000-item case is the issue's target: 5% failed lines and one expiry, the
first process killed (``kill -9``) while it polls; the second polls the same batch, and
every item ends extracted or quarantined, none lost, none submitted twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from kg_enhance import api
from kg_enhance.cli import main
from kg_enhance.config.models import BatchConfig
from kg_enhance.errors import LLMConfigurationError
from kg_enhance.extract.batch import BatchRunner, parse_custom_id
from kg_enhance.extract.cache import ExtractionCache
from kg_enhance.extract.client import OpenAICompatibleClient
from kg_enhance.extract.engine import Extractor
from kg_enhance.extract.prompts import load_template
from kg_enhance.io.files import read_jsonl
from kg_enhance.ontology import load_ontology
from kg_enhance.types import Item
from tests.support.helpers import write_job
from tests.support.scripted_batch_server import Line, ScriptedBatchServer
from tests.support.scripted_server import ScriptedServer, Step

REPO = Path(__file__).resolve().parents[2]
ONTOLOGY = load_ontology(REPO / "schemas" / "movies.yaml")
TITLE = re.compile(r"Movie (\d+) \(2000\)")
INVALID = json.dumps(
    {"facts": [{"relation": "FAVOURITE_SNACK", "object": "popcorn", "object_type": "Theme"}]}
)


def good(i: int) -> str:
    fact = {
        "relation": "DIRECTED_BY",
        "object": f"Director Number {i}",
        "object_type": "Person",
        "confidence": 0.9,
    }
    return json.dumps({"facts": [fact]})


def item_of(body: dict[str, object]) -> int:
    messages = body["messages"]
    assert isinstance(messages, list)
    match = TITLE.search(messages[1]["content"])
    assert match is not None
    return int(match.group(1))


def batch_job(
    tmp_path: Path,
    url: str,
    n: int,
    *,
    mode: str = "batch",
    batch: str = "poll_initial_s: 0.01, poll_max_s: 0.05, max_line_retries: 2",
    llm_extra: str = "",
) -> Path:
    """A job over a generated catalog of ``n`` items, extracting through ``url`` in batch mode."""
    rows = ["movieId,title,genres"] + [f"{i},Movie {i} (2000),Drama" for i in range(n)]
    (tmp_path / "items.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "job.yaml"
    path.write_text(
        f"""
version: 1
name: batchjob
ontology: {REPO / "schemas" / "movies.yaml"}
source:
  items:
    path: items.csv
    id_column: movieId
    title_column: title
    text_fields: [title, genres]
llm:
  base_url: {url}
  model: m
  mode: {mode}
  max_repairs: 2
  max_retries: 1
  batch: {{{batch}}}
{llm_extra}
recommender:
  enabled: false
outputs:
  dir: {tmp_path / "run"}
"""
    )
    return path


def start_killable(job: Path, home: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KG_ENHANCE_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "kg_enhance.cli", "extract", str(job), "--no-progress"],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition: object, proc: subprocess.Popen[bytes], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert proc.poll() is None, f"the extract process ended (rc {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


# -- the 1,000-item target ---------------------------------------------------------------------------
N = 1000
CUT = 800  # the first batch expires having run only items below CUT


def fate(i: int) -> str:
    if i % 100 == 0:
        return "always_fail"  # 1%: the line fails every time -> quarantined after the retries
    if i % 20 == 0:
        return "fail_once"  # 4% more: one failed line, then an answer (5% failed lines in all)
    if i % 50 == 3:
        return "always_invalid"  # quarantined after the repairs
    if i % 25 == 1:
        return "invalid_once"  # repaired in the next batch
    return "ok"


LINES_PER_FATE = {"ok": 1, "fail_once": 2, "always_fail": 3, "invalid_once": 2, "always_invalid": 3}


def responder(cid: str, body: dict[str, object], batch_number: int) -> Line | None:
    i = item_of(body)
    parsed = parse_custom_id(cid)
    assert parsed is not None, cid
    _, attempt, failures = parsed
    if batch_number == 1 and i >= CUT:
        return None  # the expired batch never ran these lines
    what = fate(i)
    if what == "always_fail":
        return Line(kind="fail" if i % 200 == 0 else "error", status=500)
    if what == "fail_once" and failures == 0:
        return Line(kind="fail", status=503)
    if what == "always_invalid" or (what == "invalid_once" and attempt == 1):
        return Line(text=INVALID)
    return Line(text=good(i))


def test_thousand_items_with_failed_lines_an_expiry_and_a_kill_end_extracted_or_quarantined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "state"
    with ScriptedBatchServer(responder, hold=True) as srv:
        job = batch_job(tmp_path, srv.url, N)
        proc = start_killable(job, home)
        try:
            wait_for(lambda: srv.retrieves >= 1, proc, "the first batch was created and polled")
        finally:
            kill(proc)
        assert len(srv.creations) == 1 and len(srv.creations[0][1]) == N
        state = json.loads((tmp_path / "run" / "extract" / "batch" / "items.state.json").read_text())
        assert [b["batch_id"] for b in state["batches"]] == [srv.creations[0][0]]
        assert len(state["batches"][0]["custom_ids"]) == N and state["batches"][0]["input_file_id"]

        srv.hold = False
        monkeypatch.setenv("KG_ENHANCE_HOME", str(home))
        report = api.run_job(job, only=["extract"], progress=False).report["extract"]
        lines = srv.submitted_lines()
        creations = list(srv.creations)
        uploads = srv.uploads
        # items already cached (or quarantined) are never submitted again
        again = api.run_job(job, only=["extract"], progress=False).report["extract"]
        assert srv.creations == creations and srv.uploads == uploads

    quarantined = {i for i in range(N) if fate(i) in ("always_fail", "always_invalid")}
    assert report["items"] == N and report["pending"] == 0
    assert report["extracted"] == N - len(quarantined) and report["quarantined"] == len(quarantined)
    assert report["llm_mode"] == "batch"
    run = tmp_path / "run" / "extract"
    assert {int(q["item_id"]) for q in read_jsonl(run / "quarantine.jsonl")} == quarantined
    extracted = json.loads((run / "extracted_ids.json").read_text())["items"]
    assert sorted(map(int, extracted)) == sorted(set(range(N)) - quarantined)
    facts = read_jsonl(run / "facts.jsonl")
    assert sorted(int(f["head_id"]) for f in facts) == sorted(map(int, extracted))
    assert all(f["object"] == f"Director Number {f['head_id']}" for f in facts)

    # none submitted twice: every item was sent exactly as often as its fate and the expiry require
    sent = Counter(item_of(line["body"]) for line in lines)
    expected = {i: LINES_PER_FATE[fate(i)] + (1 if i >= CUT else 0) for i in range(N)}
    assert sent == Counter(expected)
    assert len(creations) == 4  # the killed run's batch, then repairs / retries / the expired lines
    batch = report["batch"]
    assert batch["resumed"] == 1 and batch["batches"] == 3 and batch["expired"] == 1
    assert batch["unanswered"] == N - CUT
    failed = sum(1 for i in range(N) if fate(i) == "fail_once") + 3 * sum(
        1 for i in range(N) if fate(i) == "always_fail"
    )
    assert batch["failed_lines"] == failed
    assert report["repairs"] == sum(
        {"invalid_once": 1, "always_invalid": 2}.get(fate(i), 0) for i in range(N)
    )
    q = {int(r["item_id"]): r for r in read_jsonl(run / "quarantine.jsonl")}
    assert "batch request failed 3 time(s)" in q[100]["errors"][0]
    assert q[3]["attempts"] == 3 and q[3]["raw_output"] == INVALID
    assert not (run / "batch" / "items.state.json").exists()  # nothing in flight, nothing open
    assert again["cache_hits"] == N - len(quarantined) and again["quarantine_remembered"] == len(quarantined)
    assert again["llm_calls"] == 0


def test_a_batch_created_but_not_recorded_is_found_by_its_token_not_resubmitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "state"
    with ScriptedBatchServer(lambda cid, body, n: Line(text=good(item_of(body))), hold=True) as srv:
        job = batch_job(tmp_path, srv.url, 20)
        proc = start_killable(job, home)
        try:
            wait_for(lambda: srv.retrieves >= 1, proc, "the batch was polled")
        finally:
            kill(proc)
        # what a kill between the create call and the state write leaves: the input file id, no batch id
        state_path = tmp_path / "run" / "extract" / "batch" / "items.state.json"
        state = json.loads(state_path.read_text())
        state["batches"][0]["batch_id"] = None
        state_path.write_text(json.dumps(state))
        srv.hold = False
        monkeypatch.setenv("KG_ENHANCE_HOME", str(home))
        report = api.run_job(job, only=["extract"], progress=False).report["extract"]
        assert len(srv.creations) == 1
    assert report["extracted"] == 20 and report["batch"]["resumed"] == 1 and report["batch"]["batches"] == 0


def test_rounds_run_out_subjects_stay_pending_and_a_rerun_finishes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))

    def expire_first_two(cid: str, body: dict[str, object], n: int) -> Line | None:
        i = item_of(body)
        if n <= 2:  # batch 1 runs nothing; batch 2 answers item 0 with an invalid answer, runs nothing else
            return Line(text=INVALID) if n == 2 and i == 0 else None
        return Line(text=good(i))

    with ScriptedBatchServer(expire_first_two) as srv:
        job = batch_job(tmp_path, srv.url, 6, batch="poll_initial_s: 0.01, max_rounds: 2")
        first = api.run_job(job, only=["extract"], progress=False).report["extract"]
        assert first["pending"] == 6 and first["extracted"] == 0 and first["batch"]["expired"] == 2
        state = json.loads((tmp_path / "run" / "extract" / "batch" / "items.state.json").read_text())
        assert state["batches"] == [] and len(state["open"]) == 6
        assert sorted(o["attempt"] for o in state["open"].values()) == [
            1,
            1,
            1,
            1,
            1,
            2,
        ]  # item 0's repair is due
        second = api.run_job(job, only=["extract"], progress=False).report["extract"]
        assert second["extracted"] == 6 and second["pending"] == 0 and len(srv.creations) == 3
        (repair,) = [x for x in srv.submitted_lines()[-6:] if item_of(x["body"]) == 0]
        assert repair["custom_id"].endswith("-2-0") and "invalid" in repair["body"]["messages"][-1]["content"]
    assert not (tmp_path / "run" / "extract" / "batch" / "items.state.json").exists()


def test_a_failed_batch_is_one_clear_error_and_the_rerun_submits_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    with ScriptedBatchServer(lambda cid, body, n: Line(text=good(item_of(body))), fail_batches={1}) as srv:
        job = batch_job(tmp_path, srv.url, 4)
        with pytest.raises(
            LLMConfigurationError, match=r"batch batch_\d+ failed \(invalid_request: scripted batch failure\)"
        ):
            api.run_job(job, only=["extract"], progress=False)
        report = api.run_job(job, only=["extract"], progress=False).report["extract"]
        assert report["extracted"] == 4 and report["batch"]["resumed"] == 0 and len(srv.creations) == 2


def test_items_and_users_each_go_through_their_own_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    with ScriptedBatchServer(lambda cid, body, n: Line(text='{"facts": []}')) as srv:
        job = write_job(tmp_path, item_limit=3, users=2)
        sets = [f"llm.base_url={srv.url}", "llm.mode=batch", "llm.batch.poll_initial_s=0.01"]
        report = api.run_job(job, only=["extract"], progress=False, overrides=sets).report["extract"]
        assert [len(ids) for _, ids in srv.creations] == [3, 2]
    assert report["extracted"] == 3 and report["users"]["extracted"] == 2
    assert report["batch"]["batches"] == 1 and report["users"]["batch"]["batches"] == 1


def _extractor(client: OpenAICompatibleClient, cache: ExtractionCache) -> Extractor:
    return Extractor(
        client,
        ONTOLOGY,
        template=load_template("item_facts.v1"),
        cache=cache,
        mode="json_schema",
        max_concurrency=1,
        progress=False,
    )


def test_a_batch_line_is_exactly_the_synchronous_request(tmp_path: Path) -> None:
    item = Item(item_id="7", title="Movie 7 (2000)", text={"title": "Movie 7 (2000)", "genres": "Drama"})

    async def sync(url: str) -> None:
        client = OpenAICompatibleClient(base_url=url, model="m", max_retries=0)
        cache = ExtractionCache(tmp_path / "sync.sqlite")
        try:
            await _extractor(client, cache).run([item])
        finally:
            await client.close()
            cache.close()

    async def batch(url: str) -> None:
        client = OpenAICompatibleClient(base_url=url, model="m", max_retries=0)
        cache = ExtractionCache(tmp_path / "batch.sqlite")
        config = BatchConfig(poll_initial_s=0.01, poll_max_s=0.02)
        try:
            result = await BatchRunner(_extractor(client, cache), client, config, tmp_path / "s.json").run(
                [item]
            )
            assert result.stats.extracted == 1 and result.facts[0].object == "Director Number 7"
        finally:
            await client.close()
            cache.close()

    with ScriptedServer([Step(text=good(7))]) as plain:
        asyncio.run(sync(plain.url))
    with ScriptedBatchServer(lambda cid, body, n: Line(text=good(7))) as srv:
        asyncio.run(batch(srv.url))
        (line,) = srv.submitted_lines()
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
    assert line["body"] == plain.requests[0][1]
    assert line["body"]["response_format"]["type"] == "json_schema"


def test_export_then_import_runs_answers_through_validation_repair_and_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    with socket_closed_port() as url:  # an offline runner: the endpoint is never reached
        job = batch_job(tmp_path, url, 10, mode="sync")
        requests = tmp_path / "requests.jsonl"
        out = CliRunner().invoke(main, ["extract", str(job), "--export-batch", str(requests)])
        assert out.exit_code == 0, out.output
        assert "10 requests" in out.output
        lines = read_jsonl(requests)
        assert [item_of(x["body"]) for x in lines] == list(range(10))
        assert all(x["url"] == "/v1/chat/completions" and x["custom_id"].endswith("-1-0") for x in lines)

        # the runner's output: item 3 invalid, item 5 a failed line, the rest good
        def output_line(x: dict[str, object]) -> dict[str, object]:
            i = item_of(x["body"])  # type: ignore[arg-type]
            if i == 5:
                return {
                    "custom_id": x["custom_id"],
                    "response": None,
                    "error": {"code": "x", "message": "boom"},
                }
            body = {
                "choices": [{"message": {"content": INVALID if i == 3 else good(i)}, "finish_reason": "stop"}]
            }
            return {"custom_id": x["custom_id"], "response": {"status_code": 200, "body": body}}

        first = tmp_path / "output.jsonl"
        first.write_text("".join(json.dumps(output_line(x)) + "\n" for x in lines))
        out = CliRunner().invoke(main, ["extract", str(job), "--import-batch", str(first), "--no-progress"])
        assert out.exit_code == 0, out.output
        assert "extract: 10 items, 9 LLM calls, 0 cache hits, 0 quarantined" in out.output
        assert "repairs and retries to run next in" in out.output
        report = json.loads((tmp_path / "run" / "report.json").read_text())["extract"]
        assert report["llm_mode"] == "import" and report["extracted"] == 8 and report["pending"] == 2
        assert report["batch"]["followup_requests"] == 2 and report["repairs"] == 1
        followup = read_jsonl(Path(report["followup_file"]))
        by_item = {item_of(x["body"]): x for x in followup}
        assert by_item[3]["custom_id"].endswith("-2-0") and len(by_item[3]["body"]["messages"]) == 4
        assert "invalid" in by_item[3]["body"]["messages"][-1]["content"]
        assert by_item[5]["custom_id"].endswith("-1-1")

        second = tmp_path / "output2.jsonl"
        second.write_text(
            "".join(
                json.dumps(
                    {
                        "custom_id": x["custom_id"],
                        "response": {
                            "status_code": 200,
                            "body": {"choices": [{"message": {"content": good(item_of(x["body"]))}}]},
                        },
                    }
                )
                + "\n"
                for x in followup
            )
        )
        report = api.run_job(job, only=["extract"], import_batch=second, progress=False).report["extract"]
        assert report["extracted"] == 10 and report["cache_hits"] == 8 and report["followup_file"] is None
        facts = read_jsonl(tmp_path / "run" / "extract" / "facts.jsonl")
        assert sorted(int(f["head_id"]) for f in facts) == list(range(10))
        assert api.export_batch(job, tmp_path / "again.jsonl")["requests"] == 0  # all cached


def test_dry_run_shows_the_batch_cost_next_to_the_synchronous_one(tmp_path: Path) -> None:
    job = batch_job(
        tmp_path,
        "http://127.0.0.1:9/v1",
        10,
        llm_extra="  price_per_1m_input_tokens: 2.5\n  price_per_1m_output_tokens: 10",
    )
    out = CliRunner().invoke(main, ["extract", str(job), "--dry-run"])
    assert out.exit_code == 0, out.output
    plan = json.loads(out.output)
    assert plan["llm_mode"] == "batch" and plan["estimated_cost_max"] > 0
    assert plan["estimated_cost_max_batch"] == pytest.approx(plan["estimated_cost_max"] / 2, abs=1e-6)


class socket_closed_port:  # noqa: N801 - used as a context manager
    """The URL of a local port nothing listens on."""

    def __enter__(self) -> str:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    def __exit__(self, *exc: object) -> None:
        pass
