"""LLM text embeddings against a scripted ``/v1/embeddings`` (real HTTP, real ``openai`` client).

Covers the protocol behaviour no local server can be made to produce on demand:
batching, the content-hash cache (hits, misses, a changed text), and bad answers (a
wrong length, NaN, per-token vectors, too few vectors, HTTP errors), each a one-line
error with nothing already embedded lost. Then the embed_text stage end to end on the
in-memory graph store: artifact, node vectors and index, export, and a recommender
with ``text: true``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kg_enhance import api
from kg_enhance.config.models import LLMConfig, TextEmbeddingConfig
from kg_enhance.errors import (
    EmbeddingResponseError,
    KgEnhanceError,
    LLMConfigurationError,
    ServiceUnavailableError,
)
from kg_enhance.extract.text_embeddings import TextEmbeddingCache, embed_texts, subject_text
from kg_enhance.graph.memory import InMemoryGraphStore
from kg_enhance.kge.artifacts import load_text_embeddings
from tests.support.helpers import JOB_NAME, write_job
from tests.support.scripted_server import EmbedStep, ScriptedServer, text_vector


def _cfg(**kw: object) -> TextEmbeddingConfig:
    return TextEmbeddingConfig.model_validate({"enabled": True, "model": "emb", **kw})


def _llm(url: str) -> LLMConfig:
    return LLMConfig(base_url=url, max_retries=1, timeout_s=5, call_deadline_s=20)


TEXTS = [(str(i), f"title: movie {i}") for i in range(7)]


def test_vectors_are_batched_cached_by_content_and_identical_texts_sent_once(tmp_path: Path) -> None:
    texts = [*TEXTS, ("7", "title: movie 0"), ("8", "   ")]  # a repeated text, and a subject without text
    with ScriptedServer([], models=["emb"]) as srv:
        cache = TextEmbeddingCache(tmp_path / "c.sqlite")
        run = embed_texts(texts, _cfg(batch_size=3), _llm(srv.url), cache=cache)
        assert [len(r["input"]) for r in srv.embed_requests] == [3, 3, 1]
        assert {r["model"] for r in srv.embed_requests} == {"emb"}
        assert run.ids == [str(i) for i in range(8)] and run.empty == ["8"]
        assert run.vectors.shape == (8, 8) and run.dim == 8
        np.testing.assert_allclose(run.vectors[3], text_vector("title: movie 3", 8), rtol=1e-6)
        np.testing.assert_array_equal(run.vectors[7], run.vectors[0])
        assert (run.cache_hits, run.embedded, run.requests, run.prompt_tokens) == (0, 7, 3, 21)

        srv.embed_requests.clear()
        again = embed_texts(texts, _cfg(batch_size=3), _llm(srv.url), cache=cache)
        assert srv.embed_requests == []
        assert (again.cache_hits, again.embedded) == (8, 0)
        np.testing.assert_array_equal(again.vectors, run.vectors)

        changed = [*TEXTS[:6], ("6", "title: movie six")]
        third = embed_texts(changed, _cfg(batch_size=3), _llm(srv.url), cache=cache)
        assert [r["input"] for r in srv.embed_requests] == [["title: movie six"]]
        assert (third.cache_hits, third.embedded) == (6, 1)

        srv.embed_requests.clear()  # another model answers: nothing of the first is a hit
        srv.models = ["emb", "emb-2"]
        other = embed_texts(TEXTS[:2], _cfg(model="emb-2"), _llm(srv.url), cache=cache)
        assert other.cache_hits == 0 and len(srv.embed_requests) == 1
        cache.close()


def _wrong_length(texts: list[str]) -> list[list[float]]:
    return [[0.5] * 3 for _ in texts]


def _nan(texts: list[str]) -> list[list[float]]:
    return [[float("nan")] * 8 for _ in texts]


def _per_token(texts: list[str]) -> list[list[list[float]]]:
    return [[[0.1] * 8, [0.2] * 8] for _ in texts]


def _too_few(texts: list[str]) -> list[list[float]]:
    return [text_vector(texts[0], 8)]


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (
            EmbedStep(vectors=_wrong_length),
            EmbeddingResponseError,
            r"item '3' has 3 dimensions where 8 were expected",
        ),
        (EmbedStep(vectors=_nan), EmbeddingResponseError, r"item '3' contains NaN"),
        (
            EmbedStep(vectors=_per_token),
            EmbeddingResponseError,
            r"item '3' is not a list of numbers .*pooling",
        ),
        (EmbedStep(vectors=_too_few), EmbeddingResponseError, r"1 vectors .* for 3 inputs"),
        (EmbedStep(status=400), LLMConfigurationError, r"request rejected \(400.*text_embeddings\.model"),
        (EmbedStep(status=404), LLMConfigurationError, r"not found \(404\).*text_embeddings\.base_url"),
        (EmbedStep(status=500), ServiceUnavailableError, r"HTTP 500 after 1 retries"),
    ],
)
def test_a_bad_answer_is_one_clear_line_and_earlier_batches_stay_cached(
    tmp_path: Path, bad: EmbedStep, error: type[KgEnhanceError], message: str
) -> None:
    with ScriptedServer([], models=["emb"]) as srv:
        cache = TextEmbeddingCache(tmp_path / "c.sqlite")
        # the first batch (items 0-2) is fine; the second (3-5) fails (a 500 fails on its retry too)
        srv.embed_script = [EmbedStep(), bad, bad]
        with pytest.raises(error, match=message) as caught:
            embed_texts(TEXTS, _cfg(batch_size=3), _llm(srv.url), cache=cache)
        text = str(caught.value)
        assert "\n" not in text and text.startswith(("embed_text:", "embeddings endpoint"))
        assert srv.url.removesuffix("/v1") in text or "emb" in text
        assert len(cache) == 3  # the first batch's vectors were kept

        srv.embed_script, srv.embed_requests[:] = [], []
        run = embed_texts(TEXTS, _cfg(batch_size=3), _llm(srv.url), cache=cache)
        assert [r["input"] for r in srv.embed_requests] == [[t for _, t in TEXTS[3:6]], [TEXTS[6][1]]]
        assert run.cache_hits == 3 and run.vectors.shape == (7, 8)
        cache.close()


def test_the_configured_dimension_is_enforced_on_answers_and_on_cached_vectors(tmp_path: Path) -> None:
    with ScriptedServer([], models=["emb"]) as srv:
        cache = TextEmbeddingCache(tmp_path / "c.sqlite")
        with pytest.raises(EmbeddingResponseError, match=r"item '0' has 8 dimensions where 16 were expected"):
            embed_texts(TEXTS, _cfg(dim=16), _llm(srv.url), cache=cache)
        embed_texts(TEXTS, _cfg(dim=8), _llm(srv.url), cache=cache)
        with pytest.raises(EmbeddingResponseError, match=r"text embedding cache .* 8 dimensions where 4"):
            embed_texts(TEXTS, _cfg(dim=4), _llm(srv.url), cache=cache)
        cache.close()


def test_subject_text_names_its_fields_skips_empty_ones_and_is_cut() -> None:
    text = subject_text(
        [("title", "Toy  Story"), ("genres", ""), ("year", None), ("tag", "pixar")], max_chars=100
    )
    assert text == "title: Toy Story\ntag: pixar"
    assert subject_text([("title", "x" * 50)], max_chars=20) == "title: " + "x" * 13


def test_embed_text_stage_writes_artifact_nodes_index_export_and_feeds_a_text_recommender(
    tmp_path: Path, state_home: Path
) -> None:
    with ScriptedServer([], models=["emb"]) as srv:
        extra = f"""
kge: {{dim: 8, epochs: 3}}
text_embeddings: {{enabled: true, base_url: "{srv.url}", model: emb, users: true, batch_size: 64}}
"""
        job = write_job(tmp_path, llm_enabled=False, extra=extra)
        # the recommender list is the helper's; give it a text model too
        text = job.read_text().replace(
            "models: [{type: bpr_mf}, {type: lightgcn}, {type: kg_bpr}, {type: kg_lightgcn}]",
            "models: [{type: bpr_mf}, {type: bpr_mf, name: bpr_text, text: true}]",
        )
        job.write_text(text.replace("epochs: 6", "epochs: 3"))
        store = InMemoryGraphStore(namespace=JOB_NAME)
        result = api.run_job(job, progress=False, store_factory=lambda: store)

        assert list(result.results) == ["extract", "load", "embed_text", "embed", "recommend", "export"]
        section = result.report["text_embeddings"]
        assert section["dim"] == 8 and section["model"] == "emb" and section["fields"] == ["title", "genres"]
        assert section["kinds"]["item"]["subjects"] == 300 and section["kinds"]["item"]["embedded"] == 300
        assert section["kinds"]["user"]["subjects"] > 0
        assert section["vector_indexes"] == ["item_text_embedding", "user_text_embedding"]
        assert section["written_back"]["item"] == 300
        first = srv.embed_requests[0]["input"][0]
        assert first == "title: Toy Story (1995)\ngenres: Adventure|Animation|Children|Comedy|Fantasy"
        assert [len(r["input"]) for r in srv.embed_requests[:5]] == [64, 64, 64, 64, 44]

        saved = load_text_embeddings(result.run.root)
        assert (
            saved.item_vectors.shape == (300, 8)
            and saved.user_vectors.shape[0] == section["kinds"]["user"]["subjects"]
        )
        neighbours = store.text_neighbours("1", k=3)
        assert len(neighbours) == 3 and all(n["item_id"] != "1" for n in neighbours)
        scores = [n["score"] for n in neighbours]
        assert scores == sorted(scores, reverse=True)

        rec = result.report["recommend"]
        assert rec["text_item_coverage"] == 1.0 and {"bpr_mf", "bpr_text"} <= set(rec)
        assert rec["bpr_text"]["test"] != rec["bpr_mf"]["test"]  # the text input changes the model
        exported = np.load(result.run.item_text_vectors)
        ids = json.loads(result.run.item_ids.read_text())
        assert exported.shape == (300, 8)
        np.testing.assert_allclose(exported[ids.index("1")], text_vector(first, 8), rtol=1e-6)

        out = tmp_path / "export"
        api.export_embeddings(job, out=out, check_graph=False)
        assert np.load(out / "item_text_vectors.npy").shape == (300, 8)
        assert json.loads((out / "item_text_ids.json").read_text())[0] == "1"
        assert (out / "user_text_vectors.npy").exists() and (out / "text_metadata.json").exists()

        srv.embed_requests.clear()  # a second run asks nothing: every vector is a cache hit
        again = api.run_job(job, progress=False, store_factory=lambda: store, only=["embed_text"])
        assert srv.embed_requests == []
        assert again.report["text_embeddings"]["kinds"]["item"]["cache_hits"] == 300


def test_a_text_model_without_text_embeddings_is_a_config_error(tmp_path: Path) -> None:
    job = write_job(tmp_path, llm_enabled=False)
    job.write_text(job.read_text().replace("{type: bpr_mf}", "{type: bpr_mf, text: true}", 1))
    with pytest.raises(KgEnhanceError, match=r"text: true, which needs text_embeddings.enabled"):
        api.validate_job(job)


def test_llm_serve_config_serves_chat_and_a_mean_pooled_embedding_alias(tmp_path: Path) -> None:
    from kg_enhance.config import defaults as D
    from kg_enhance.services import llm

    fake = tmp_path / "m.gguf"  # a GGUF header whose first key is general.architecture = "qwen2"
    key, value = b"general.architecture", b"qwen2"
    header = b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(8, "little")
    fake.write_bytes(
        header
        + len(key).to_bytes(8, "little")
        + key
        + (8).to_bytes(4, "little")
        + len(value).to_bytes(8, "little")
        + value
    )
    assert llm.gguf_architecture(fake) == "qwen2"
    assert llm.gguf_architecture(tmp_path / "missing.gguf") == "llama"
    config = llm.server_config(fake, n_ctx=512, threads=1)
    chat, embed = config["models"]  # type: ignore[misc]
    assert chat["model_alias"] == D.LLM_MODEL and "embedding" not in chat
    assert embed["model_alias"] == D.LLM_EMBED_MODEL and embed["embedding"] is True
    assert embed["kv_overrides"] == ["qwen2.pooling_type=int:1"] and embed["model"] == chat["model"] == str(
        fake
    )
    real = llm.model_path()
    if real is not None:  # the bundled SmolLM2 GGUF
        assert llm.gguf_architecture(real) == "llama"


FAKE_LLAMA_SERVER = """
import json, os, resource, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # its SIGSEGV leaves no core file
config = json.load(open(sys.argv[sys.argv.index("--config_file") + 1]))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"object": "list", "data": []}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if os.environ["FAKE_LLAMA_MODE"] == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer((config["host"], config["port"]), Handler).serve_forever()
"""


@pytest.mark.parametrize(
    ("mode", "ended"),
    [("segfault", r"server signal 11 \(SIGSEGV\)"), ("http500", "server still running, stopped by serve")],
)
def test_serve_fails_on_a_server_that_answers_models_but_not_a_completion(
    mode: str, ended: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash this guards against (llama.cpp built -march=native on an AMX Xeon: /v1/models
    answers, the first completion segfaults) cannot be produced on demand, so a stand-in
    ``llama_cpp.server`` module on PYTHONPATH plays it: ``serve`` must fail with how the server
    ended, stop a server that is still up, and leave no pid file that ``llm status`` would trust."""
    import socket

    from kg_enhance.errors import ServiceUnavailableError
    from kg_enhance.services import llm
    from kg_enhance.services.process import pid_alive

    fake = tmp_path / "fake" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "server.py").write_text(FAKE_LLAMA_SERVER)
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))
    monkeypatch.setenv("FAKE_LLAMA_MODE", mode)
    monkeypatch.setenv("KG_ENHANCE_LLM_PORT", str(free))
    monkeypatch.setenv("KG_ENHANCE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("KG_ENHANCE_LLM_MODEL_PATH", str(tmp_path / "m.gguf"))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    pid_file = tmp_path / "state" / "llm" / "server.pid"
    started_pids: list[int] = []
    real_write = Path.write_text

    def record(path: Path, data: str, *args: object, **kwargs: object) -> int:
        if path == pid_file:
            started_pids.append(int(data))
        return real_write(path, data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", record)
    with pytest.raises(ServiceUnavailableError, match=r"first chat completion failed .*" + ended) as info:
        llm.serve(timeout=30)
    message = str(info.value)
    assert "\n" not in message and "setup.sh" in message
    assert started_pids and not pid_alive(started_pids[0])  # crashed, or stopped by serve
    assert not pid_file.exists() and not llm.status().running
    assert llm.exit_description(None) == "still running" and llm.exit_description(2) == "exit code 2"
