"""PyKEEN training: reproducible on CPU, stable id maps, versioned artifacts, model-name validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kg_enhance.config.models import KGEConfig
from kg_enhance.datasets.movielens import DEMO_DIR
from kg_enhance.errors import SparseGraphError, StageError
from kg_enhance.kge.artifacts import load_embeddings_dir, save_embeddings
from kg_enhance.kge.train import train_kge
from kg_enhance.names import entity_key


def gold_triples() -> list[tuple[str, str, str]]:
    df = pd.read_csv(DEMO_DIR / "gold_facts.tsv", sep="\t", dtype=str)
    return [
        (f"item:{i}", r, f"entity:{entity_key(t, o)}")
        for i, r, o, t in df[["item_id", "relation", "object", "object_type"]].itertuples(index=False)
    ]


CONFIG = KGEConfig(model="DistMult", dim=8, epochs=4, batch_size=256, seed=7)


def test_same_seed_and_graph_give_the_same_metrics_and_rows(tmp_path: Path) -> None:
    triples = gold_triples()
    a = train_kge(triples, CONFIG, progress=False)
    b = train_kge(list(reversed(triples)), CONFIG, progress=False)  # order of reading must not matter
    assert a.metrics == b.metrics
    assert a.entity_to_id == b.entity_to_id and a.relation_to_id == b.relation_to_id
    assert np.array_equal(a.entity_vectors, b.entity_vectors)
    assert a.metadata["triples_fingerprint"] == b.metadata["triples_fingerprint"]
    assert set(a.metrics) == {"mrr", "hits@1", "hits@3", "hits@10"}
    other = train_kge(triples, CONFIG.model_copy(update={"seed": 8}), progress=False)
    assert not np.array_equal(a.entity_vectors, other.entity_vectors)


def test_artifacts_are_versioned_and_checked_against_the_graph(tmp_path: Path) -> None:
    result = train_kge(gold_triples(), CONFIG, progress=False, graph_fingerprint="abc")
    root = tmp_path / "run" / "embeddings"
    save_embeddings(result, root, version="20260101T000000-aaaaaa")
    save_embeddings(result, root, version="20260102T000000-bbbbbb")
    latest = load_embeddings_dir(tmp_path / "run")
    assert latest.metadata["version"] == "20260102T000000-bbbbbb"
    assert latest.entity_vectors.shape == (len(latest.entity_to_id), 8)
    older = load_embeddings_dir(tmp_path / "run", version="20260101T000000-aaaaaa")
    assert older.metadata["version"] == "20260101T000000-aaaaaa"
    assert (
        load_embeddings_dir(tmp_path / "run", expected_fingerprint="abc").metadata["graph_fingerprint"]
        == "abc"
    )
    with pytest.raises(
        StageError, match="trained on graph abc but the graph is now xyz; re-run the embed stage"
    ):
        load_embeddings_dir(tmp_path / "run", expected_fingerprint="xyz")
    with pytest.raises(StageError, match="no complete embeddings version 'nope'"):
        load_embeddings_dir(tmp_path / "run", version="nope")
    for n in range(3, 9):
        save_embeddings(result, root, version=f"2026010{n}T000000-cccccc")
    assert len([p for p in root.iterdir() if p.is_dir()]) == 5  # the newest five are kept


def test_a_kg_too_sparse_to_split_is_a_clear_error() -> None:
    star = [(f"item:{n}", "HAS_THEME", f"entity:Theme:t{n}") for n in range(40)]  # every entity once
    with pytest.raises(SparseGraphError, match="too sparse to hold out 10% .* kge.test_ratio: 0"):
        train_kge(star, CONFIG, progress=False)
    result = train_kge(star, CONFIG.model_copy(update={"test_ratio": 0.0}), progress=False)
    assert result.entity_vectors.shape[0] == 80
    # nothing held out: no metrics (a score on training triples is not a result)
    assert result.metrics == {"mrr": None, "hits@1": None, "hits@3": None, "hits@10": None}
    assert result.metadata["test_triples"] == 0


def test_a_missing_or_junk_latest_falls_back_to_the_newest_complete_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result = train_kge(gold_triples(), CONFIG, progress=False)
    root = tmp_path / "run" / "embeddings"
    save_embeddings(result, root, version="20260101T000000-aaaaaa")
    save_embeddings(result, root, version="20260102T000000-bbbbbb")
    (root / "20260103T000000-cccccc").mkdir()  # a version whose writer died before its metadata
    for latest, why in (
        (None, "is missing"),
        (b"\xff\xfe\x00junk", "is unreadable"),
        (b"../../etc", "does not name a version"),
        (b"20260103T000000-cccccc", "missing or incomplete"),
    ):
        (root / "LATEST").unlink(missing_ok=True)
        if latest is not None:
            (root / "LATEST").write_bytes(latest)
        caplog.clear()
        with caplog.at_level("WARNING"):
            got = load_embeddings_dir(tmp_path / "run")
        assert got.metadata["version"] == "20260102T000000-bbbbbb"
        assert why in caplog.text and "using the newest complete version 20260102T000000-bbbbbb" in caplog.text


def test_corrupt_artifact_files_are_one_line_errors(tmp_path: Path) -> None:
    result = train_kge(gold_triples(), CONFIG, progress=False)
    root = tmp_path / "run" / "embeddings"
    folder = save_embeddings(result, root, version="20260101T000000-aaaaaa")
    good = (folder / "entity_vectors.npy").read_bytes()
    (folder / "entity_vectors.npy").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(StageError) as info:
        load_embeddings_dir(tmp_path / "run")
    message = info.value.one_line()
    assert "entity_vectors.npy: corrupt embeddings artifact" in message and "re-run the embed stage" in message
    assert "\n" not in str(info.value)
    (folder / "entity_vectors.npy").write_bytes(good)
    (folder / "entity_to_id.json").write_text('{"item:1": 0}')  # ids and rows disagree
    with pytest.raises(StageError, match="entity_to_id.json: corrupt embeddings artifact \\(1 ids for"):
        load_embeddings_dir(tmp_path / "run")
    (folder / "entity_to_id.json").write_bytes(b"\x00\x01 not json")
    with pytest.raises(StageError, match="entity_to_id.json: corrupt embeddings artifact"):
        load_embeddings_dir(tmp_path / "run")
