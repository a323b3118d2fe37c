"""Recommenders with LLM text embeddings as an item-side input (``text: true``).

A tiny cold-start case where only the text can help: two clusters of items, each
user likes one cluster, and the test items have no training interactions at all.
A collaborative model cannot place them; the same model with the text fused in can.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kg_enhance.config.models import RecModelSpec, RecommenderConfig
from kg_enhance.errors import ConfigError
from kg_enhance.kge.artifacts import TextEmbeddings
from kg_enhance.rec.data import Split
from kg_enhance.rec.models import rec_model_resolver
from kg_enhance.rec.text import TextInputs, build_text_inputs, standardise
from kg_enhance.rec.train import train_model

N_USERS, N_CLUSTERS, PER_CLUSTER = 24, 4, 6
#: per cluster: the last two items never appear in training (one for validation, one for test)
COLD_VALID, COLD_TEST = PER_CLUSTER - 2, PER_CLUSTER - 1
N_ITEMS = N_CLUSTERS * PER_CLUSTER


def _cold_start_split() -> Split:
    train, valid, test = [], [], []
    for u in range(N_USERS):
        base = (u % N_CLUSTERS) * PER_CLUSTER
        train.extend((u, base + i) for i in range(COLD_VALID))  # every warm item of the user's cluster
        valid.append((u, base + COLD_VALID))
        test.append((u, base + COLD_TEST))
    return Split(
        user_ids=[f"u{u}" for u in range(N_USERS)],
        item_ids=[f"i{i}" for i in range(N_ITEMS)],
        train=np.asarray(train, dtype=np.int64),
        valid=np.asarray(valid, dtype=np.int64),
        test=np.asarray(test, dtype=np.int64),
    )


def _cluster_text(split: Split, *, with_text: int | None = None) -> TextEmbeddings:
    """A 16-d "LLM" vector per item: its cluster's direction plus noise, and a large shared offset
    (as real LLM embeddings have), which standardisation removes."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(N_CLUSTERS, 16))
    vectors = np.stack(
        [centres[n // PER_CLUSTER] + 0.3 * rng.normal(size=16) + 50.0 for n in range(split.n_items)]
    ).astype(np.float32)
    ids = list(split.item_ids)
    if with_text is not None:
        ids, vectors = ids[:with_text], vectors[:with_text]
    return TextEmbeddings(item_ids=ids, item_vectors=vectors)


#: k=1: a user's candidates are their cluster's cold test item, the other clusters' warm items
#: (which the model learns to rank low) and the other clusters' cold items (7 cold ones in all)
CONFIG = RecommenderConfig(dim=8, epochs=30, batch_size=48, learning_rate=0.05, k=1, patience=30, seed=3)


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("bpr_mf", {"text_trainable": True}),
        ("lightgcn", {"text_trainable": True}),
        ("bpr_mf", {"text_trainable": True, "text_components": 4}),
    ],
)
def test_a_learned_text_projection_places_items_without_interactions(
    model: str, params: dict[str, object]
) -> None:
    split = _cold_start_split()
    text = build_text_inputs(_cluster_text(split), split)
    plain = train_model(RecModelSpec(type=model), split, CONFIG, progress=False)
    fused = train_model(
        RecModelSpec(type=model, text=True, params=params), split, CONFIG, text=text, progress=False
    )
    # every test item is cold: the text is the only way to tell which cluster it belongs to
    # (seeds 3-4 measured: without text 0.00-0.25, with a learned projection 0.79-1.00)
    assert fused.test["hit@1"] >= 0.75, fused.test
    assert plain.test["hit@1"] <= 0.25, plain.test
    assert fused.model.text_proj is not None and fused.model.text_proj.weight.requires_grad


def test_the_default_fixed_projection_trains_and_stays_fixed() -> None:
    """The default: a fixed random projection of the text, a prior the ID embeddings learn around."""
    split = _cold_start_split()
    text = build_text_inputs(_cluster_text(split), split)
    fused = train_model(RecModelSpec(type="bpr_mf", text=True), split, CONFIG, text=text, progress=False)
    plain = train_model(RecModelSpec(type="bpr_mf"), split, CONFIG, progress=False)
    proj = fused.model.text_proj
    assert proj is not None and not proj.weight.requires_grad
    again = rec_model_resolver.lookup("bpr_mf")(N_USERS, N_ITEMS, 8, **text.model_kwargs())
    assert again.text_proj is not None and torch.equal(
        proj.weight, again.text_proj.weight
    )  # untouched by training
    losses = [h["loss"] for h in fused.history]
    assert losses[-1] < 0.5 * losses[0]
    assert not torch.allclose(fused.model.representations()[1], plain.model.representations()[1])


def test_the_text_input_changes_the_output_and_a_trainable_projection_gets_gradients() -> None:
    split = _cold_start_split()
    text = build_text_inputs(_cluster_text(split), split)
    cls = rec_model_resolver.lookup("kg_bpr")
    kg = {
        "kg_vectors": torch.zeros(split.n_items, 4),
        "kg_mask": torch.zeros(split.n_items),
    }
    torch.manual_seed(0)
    without = cls(split.n_users, split.n_items, 8, **kg)
    torch.manual_seed(0)
    with_text = cls(split.n_users, split.n_items, 8, **kg, **text.model_kwargs(), text_trainable=True)
    u0, i0 = without.representations()
    u1, i1 = with_text.representations()
    assert torch.equal(u0, u1) and not torch.allclose(i0, i1)
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([0, 6]), torch.tensor([7, 1])
    loss, _ = with_text.bpr_terms(users, pos, neg)
    loss.backward()  # type: ignore[no-untyped-call]
    assert with_text.text_proj is not None and with_text.text_proj.weight.grad is not None
    assert with_text.text_proj.weight.grad.abs().sum() > 0


def test_items_without_text_get_a_zero_row_and_mask() -> None:
    split = _cold_start_split()
    text = build_text_inputs(_cluster_text(split, with_text=12), split)
    assert text.coverage == pytest.approx(12 / N_ITEMS)
    assert torch.all(text.item_vectors[12:] == 0) and torch.all(text.item_mask[12:] == 0)
    present = text.item_vectors[:12].numpy()
    np.testing.assert_allclose(present.mean(axis=0), 0, atol=1e-5)  # the shared offset is gone
    np.testing.assert_allclose(present.std(axis=0), 1, atol=1e-4)
    assert standardise(np.ones((3, 2), np.float32), np.zeros(3)).sum() == 0


def test_a_text_spec_without_text_inputs_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"text: true but no text embeddings"):
        train_model(RecModelSpec(type="bpr_mf", text=True), _cold_start_split(), CONFIG, progress=False)


def test_text_inputs_must_match_the_catalog() -> None:
    bad = TextInputs(item_vectors=torch.zeros(3, 4), item_mask=torch.ones(3))
    with pytest.raises(ValueError, match=rf"3 rows for {N_ITEMS} items"):
        rec_model_resolver.lookup("bpr_mf")(N_USERS, N_ITEMS, 8, **bad.model_kwargs())
