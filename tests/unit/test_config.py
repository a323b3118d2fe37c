"""Job files: loading, substitution, overrides, and one-line errors with key paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kg_enhance.api import job_json_schema, ontology_json_schema, validate_job
from kg_enhance.config.job import load_job
from kg_enhance.config.loader import apply_overrides, substitute_env
from kg_enhance.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
INVALID = sorted((REPO / "tests" / "fixtures" / "invalid_jobs").glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    return first[len("# expect: ") :]


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_job_fixture_fails_with_expected_text(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        validate_job(path)
    message = str(info.value)
    assert _expected(path) in message
    assert str(path) in message  # names the file


def test_demo_job_is_valid() -> None:
    job = validate_job(REPO / "examples" / "jobs" / "movielens-demo.yaml")
    assert job.name == "movielens-demo"
    assert [m.key for m in job.recommender.models] == ["bpr_mf", "lightgcn", "kg_bpr", "kg_lightgcn"]
    assert job.outputs.dir.endswith("/movielens-demo")


def test_outputs_dir_resolves_against_the_job_file_like_every_other_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kg_enhance.rundir import RunDir

    monkeypatch.delenv("KG_ENHANCE_RUNS", raising=False)
    demo = validate_job(REPO / "examples" / "jobs" / "movielens-demo.yaml")
    assert RunDir.for_job(demo).root == REPO / "runs" / "movielens-demo"
    job_dir = tmp_path / "jobs"
    job_dir.mkdir()
    text = (REPO / "examples" / "jobs" / "movielens-demo.yaml").read_text()
    path = job_dir / "job.yaml"
    path.write_text(
        text.replace("ontology: schemas/movies.yaml", f"ontology: {REPO / 'schemas' / 'movies.yaml'}")
    )
    monkeypatch.chdir(tmp_path)  # the current folder plays no part
    job = validate_job(path, overrides=["outputs.dir=out/${name}"])
    assert RunDir.for_job(job).root == job_dir / "out" / "movielens-demo"
    assert RunDir.for_job(job).topk == job_dir / "out" / "movielens-demo" / "recommend" / "topk.parquet"


def test_cli_validate_misspelt_key_exits_nonzero_with_key_path() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kg_enhance.cli",
            "validate",
            str(REPO / "examples/jobs/movielens-demo.yaml"),
            "--set",
            "recommender.epochz=3",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "recommender.epochz" in lines[0] and "did you mean 'epochs'" in lines[0]


def test_validate_reports_every_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_job(
            REPO / "examples/jobs/movielens-demo.yaml",
            overrides=["kge.dimz=3", "recommender.k=0", "llm.temperature=9"],
        )
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any("kge.dimz" in line for line in lines)
    assert any("recommender.k" in line for line in lines)
    assert any("llm.temperature" in line for line in lines)


def test_env_substitution_default_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"a": "${X_KG:-fallback}", "b": ["${Y_KG}"], "c": "${name}/x"}
    monkeypatch.delenv("X_KG", raising=False)
    monkeypatch.setenv("Y_KG", "yes")
    # ${name} is the job's own name: only the job loader defers it; the generic loader knows no names
    assert substitute_env(doc, deferred=frozenset({"name"})) == {
        "a": "fallback",
        "b": ["yes"],
        "c": "${name}/x",
    }
    with pytest.raises(ConfigError, match="c: environment variable name is not set"):
        substitute_env(doc)
    monkeypatch.setenv("X_KG", "set")
    assert substitute_env(doc, deferred=frozenset({"name"}))["a"] == "set"


def test_missing_env_names_variable_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_KG", raising=False)
    with pytest.raises(ConfigError, match=r"llm\.base_url: environment variable NOPE_KG is not set"):
        substitute_env({"llm": {"base_url": "${NOPE_KG}"}})


def test_overrides_are_typed() -> None:
    doc = apply_overrides({"kge": {"dim": 8}}, ["kge.dim=32", "kge.device=cuda", "llm.enabled=false"])
    assert doc == {"kge": {"dim": 32, "device": "cuda"}, "llm": {"enabled": False}}


def test_override_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["kge.dim"])


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.text(max_size=20), st.integers(), st.booleans()),
        max_size=5,
    )
)
def test_substitution_leaves_text_without_placeholders_alone(doc: dict) -> None:
    clean = {k: v for k, v in doc.items() if not (isinstance(v, str) and "${" in v)}
    assert substitute_env(clean, env={}) == clean


def test_non_utf8_job_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_job(path)


def test_top_level_list_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_job(path)


def test_committed_json_schemas_are_fresh() -> None:
    for name, schema in (
        ("job.schema.json", job_json_schema()),
        ("ontology.schema.json", ontology_json_schema()),
    ):
        committed = json.loads((REPO / "schemas" / name).read_text())
        assert committed == json.loads(json.dumps(schema)), (
            f"schemas/{name} is stale: run `kg-enhance schema`"
        )


def test_neo4j_conf_follows_the_port_variables_and_keeps_extra_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kg_enhance.services.neo4j import write_conf

    monkeypatch.setenv("KG_ENHANCE_NEO4J_BOLT_PORT", "17687")
    monkeypatch.setenv("KG_ENHANCE_NEO4J_HTTP_PORT", "17474")
    conf = write_conf(tmp_path)
    assert "17687" in conf.read_text() and "17474" in conf.read_text()
    # a local server sends nothing out (checked against a running 5.26 with SHOW SETTINGS)
    assert "dbms.usage_report.enabled=false" in conf.read_text()
    assert "client.allow_telemetry=false" in conf.read_text()
    (tmp_path / "neo4j.extra.conf").write_text("db.logs.query.enabled=OFF\n")
    monkeypatch.setenv("KG_ENHANCE_NEO4J_BOLT_PORT", "27687")  # a later start with other ports
    text = write_conf(tmp_path).read_text()
    assert "27687" in text and "17687" not in text and "17474" in text
    assert text.endswith("db.logs.query.enabled=OFF\n")
