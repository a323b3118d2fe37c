"""Bounded-memory recommendation paths give the same answers as the unbounded ones, on small data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kg_enhance.config.models import RecommenderConfig
from kg_enhance.rec.evaluate import RankingEvaluator, TailSlots, UserItems, batched_top_k
from kg_enhance.rec.models import BPRMF, LightGCN
from kg_enhance.rec.serve import Path3, PathExplainer
from kg_enhance.rec.train import _Optimizer, batch_size_for


def _reference_metrics(
    scores: torch.Tensor, target: np.ndarray, exclude: np.ndarray, k: int
) -> dict[str, float]:
    """The textbook per-user computation on the full users x items matrix."""
    scores = scores.clone()
    scores[torch.as_tensor(exclude[:, 0]), torch.as_tensor(exclude[:, 1])] = -torch.inf
    top = torch.topk(scores, k=k, dim=1).indices.numpy()
    users = sorted(set(target[:, 0].tolist()))
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recall = ndcg = hit = 0.0
    seen: set[int] = set()
    for u in users:
        relevant = set(target[target[:, 0] == u, 1].tolist())
        gains = np.array([1.0 if i in relevant else 0.0 for i in top[u]])
        recall += gains.sum() / len(relevant)
        ndcg += float((gains * discounts).sum() / discounts[: min(len(relevant), k)].sum())
        hit += float(gains.sum() > 0)
        seen.update(top[u].tolist())
    n = len(users)
    return {
        f"recall@{k}": recall / n,
        f"ndcg@{k}": ndcg / n,
        f"hit@{k}": hit / n,
        f"coverage@{k}": len(seen) / scores.shape[1],
    }


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    n_users, n_items = 57, 203
    users = torch.from_numpy(rng.normal(size=(n_users, 8)).astype(np.float32))
    items = torch.from_numpy(rng.normal(size=(n_items, 8)).astype(np.float32))
    pairs = np.unique(
        np.stack([rng.integers(0, n_users, 3000), rng.integers(0, n_items, 3000)], axis=1), axis=0
    )
    rng.shuffle(pairs)
    return users, items, pairs[:2000], pairs[2000:]


def test_chunked_top_k_equals_the_dense_top_k(data) -> None:  # type: ignore[no-untyped-def]
    users, items, seen, _ = data
    dense = users @ items.T
    dense[torch.as_tensor(seen[:, 0]), torch.as_tensor(seen[:, 1])] = -torch.inf
    expected = torch.topk(dense, k=10, dim=1)
    exclude = UserItems.from_pairs(seen, users.shape[0])
    got_items = np.zeros((users.shape[0], 10), dtype=np.int64)
    got_scores = np.zeros((users.shape[0], 10), dtype=np.float32)
    for batch, top, scores in batched_top_k(
        users, items, np.arange(users.shape[0]), k=10, exclude=exclude, batch_users=5, item_chunk=17
    ):
        got_items[batch], got_scores[batch] = top, scores
    assert np.allclose(got_scores, expected.values.numpy(), atol=1e-5)
    assert np.array_equal(got_items, expected.indices.numpy())
    assert not any(set(got_items[u]) & set(seen[seen[:, 0] == u, 1]) for u in range(users.shape[0]))


def _reference_quota(
    scores: torch.Tensor, seen: np.ndarray, tail: np.ndarray, k: int, slots: int
) -> list[list[int]]:
    """Per user, by hand: the best k - slots unseen items, then the best unseen tail items not among
    them; where too few tail items are left, the next unseen items of the plain ranking."""
    out = []
    for u in range(scores.shape[0]):
        unseen = [i for i in range(scores.shape[1]) if i not in set(seen[seen[:, 0] == u, 1].tolist())]
        ranked = sorted(unseen, key=lambda i: (-float(scores[u, i]), i))
        head = ranked[: k - slots]
        extra = [i for i in ranked if tail[i] and i not in head][:slots]
        extra += [i for i in ranked[k - slots :] if not tail[i]][: slots - len(extra)]
        out.append(head + sorted(extra, key=lambda i: (-float(scores[u, i]), i)))
    return out


@pytest.mark.parametrize("slots", [0, 3, 9])
def test_tail_slots_rank_as_the_hand_built_quota(data, slots: int) -> None:  # type: ignore[no-untyped-def]
    users, items, seen, held_out = data
    tail = np.random.default_rng(5).random(items.shape[0]) < 0.6
    policy = TailSlots.of(tail, slots)
    exclude = UserItems.from_pairs(seen, users.shape[0])
    got = np.zeros((users.shape[0], 10), dtype=np.int64)
    for batch, top, scores in batched_top_k(
        users,
        items,
        np.arange(users.shape[0]),
        k=10,
        exclude=exclude,
        batch_users=5,
        item_chunk=17,
        tail_slots=policy,
    ):
        got[batch] = top
        assert np.all(np.diff(scores, axis=1) <= 1e-6)  # still sorted by score
    assert got.tolist() == _reference_quota(users @ items.T, seen, tail, 10, slots)
    if slots:
        assert (tail[got[:, -slots:]]).all()  # every user here has enough tail items left
        # the evaluator ranks with the same policy: its lists are these
        evaluator = RankingEvaluator(
            held_out, [seen], n_users=users.shape[0], n_items=items.shape[0], k=10, tail_slots=policy
        )
        ranked = evaluator.per_user(users, items)["top"]
        assert np.array_equal(ranked, got[evaluator.users])


def test_tail_slots_fall_back_to_the_plain_ranking_when_the_tail_runs_out() -> None:
    # 8 items scored 7, 6, ..., 0 for the one user; the tail is items 5, 6 and 7, and 7 is seen
    users = torch.ones(1, 1)
    items = torch.arange(7, -1, -1, dtype=torch.float32)[:, None]
    tail = np.zeros(8, dtype=bool)
    tail[[5, 6, 7]] = True
    seen = UserItems.from_pairs(np.array([[0, 7]]), 1)
    ((_, top, _),) = batched_top_k(
        users, items, np.array([0]), k=5, exclude=seen, item_chunk=3, tail_slots=TailSlots.of(tail, 4)
    )
    # one plain position (item 0); of the four reserved ones the two tail items left (5, 6) take two
    # and the plain ranking's next non-tail items (1, 2) the other two; sorted by score
    assert top[0].tolist() == [0, 1, 2, 5, 6]


def test_tail_slots_never_list_an_item_twice_when_a_user_has_fewer_than_k_items_left() -> None:
    # 4 items scored 5, 3, 4, 2; the tail is items 2 and 3; the user has seen 1 and 3: two items left
    users = torch.ones(1, 1)
    items = torch.tensor([[5.0], [3.0], [4.0], [2.0]])
    tail = np.array([False, False, True, True])
    seen = UserItems.from_pairs(np.array([[0, 1], [0, 3]]), 1)
    ((_, plain, plain_scores),) = batched_top_k(users, items, np.array([0]), k=4, exclude=seen)
    ((_, top, scores),) = batched_top_k(
        users, items, np.array([0]), k=4, exclude=seen, tail_slots=TailSlots.of(tail, 2)
    )
    assert len(set(top[0].tolist())) == 4 and set(top[0].tolist()) == set(plain[0].tolist())
    # the two items left lead; the excluded ones fill the list at -inf, as without slots
    assert top[0, :2].tolist() == [0, 2] and np.isneginf(scores[0, 2:]).all()
    assert np.isneginf(plain_scores[0, 2:]).all()


def test_a_tail_mask_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match=r"tail mask has shape \(3,\), expected \(4,\)"):
        list(
            batched_top_k(
                torch.ones(1, 1),
                torch.ones(4, 1),
                np.array([0]),
                k=3,
                exclude=None,
                tail_slots=TailSlots.of(np.array([True, False, True]), 1),
            )
        )


def test_tail_slots_must_leave_a_plain_position() -> None:
    with pytest.raises(ValueError, match=r"recommender.tail_slots \(20\) must be below recommender.k \(20\)"):
        RecommenderConfig(k=20, tail_slots=20)


def test_sliced_evaluation_equals_the_reference(data) -> None:  # type: ignore[no-untyped-def]
    users, items, seen, held_out = data
    evaluator = RankingEvaluator(
        held_out, [seen], n_users=users.shape[0], n_items=items.shape[0], k=10, batch_users=4
    )
    got = evaluator.evaluate(users, items)
    expected = _reference_metrics(users @ items.T, held_out, seen, 10)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


def test_user_items_rows_are_the_pairs_of_the_users() -> None:
    pairs = np.array([[2, 5], [0, 1], [2, 3], [0, 1], [4, 0]])
    csr = UserItems.from_pairs(pairs, 5)
    rows, items = csr.rows(np.array([2, 3, 0]))
    assert rows.tolist() == [0, 0, 2] and items.tolist() == [3, 5, 1]
    assert csr.counts(np.array([0, 1, 2])).tolist() == [1, 0, 2] and csr.users().tolist() == [0, 2, 4]


def test_factorisation_updates_only_the_rows_of_the_batch() -> None:
    torch.manual_seed(0)
    model = BPRMF(50, 80, 8)
    opt = _Optimizer(model, 0.05)
    assert [type(o).__name__ for o in opt.optimizers] == ["SparseAdam"]
    before = model.item.weight.detach().clone()
    users, pos, neg = torch.tensor([1, 2]), torch.tensor([3, 4]), torch.tensor([5, 6])
    loss, reg = model.bpr_terms(users, pos, neg)
    opt.zero_grad()
    (loss + 0.01 * reg).backward()  # type: ignore[no-untyped-call]
    opt.step()
    changed = (model.item.weight.detach() != before).any(dim=1).nonzero().ravel().tolist()
    assert changed == [3, 4, 5, 6]


def test_graph_models_propagate_a_bounded_number_of_times_per_epoch() -> None:
    cfg = RecommenderConfig(batch_size=2048, graph_batches_per_epoch=32)
    train = np.array([[0, 0], [1, 1]])
    graph = LightGCN(2, 2, 4, train_pairs=train)
    mf = BPRMF(2, 2, 4)
    assert batch_size_for(mf, 1_000_000, cfg) == 2048
    assert batch_size_for(graph, 10_000, cfg) == 2048  # small data: the configured batch
    assert batch_size_for(graph, 1_000_000, cfg) == 31_250  # large data: 32 propagations per epoch


def _paths_before(ex: PathExplainer, history: list[str], item_id: str, limit: int = 3) -> list[Path3]:
    """The explanation search as it was: every history item against the target's entities."""
    target = ex.entities.get(item_id, set())
    found = [
        Path3(j, e, ex.weight[e]) for j in history for e in ex.entities.get(j, set()) & target if j != item_id
    ]
    found.sort(key=lambda p: (-p.weight, p.via_entity, p.via_item))
    out: list[Path3] = []
    used: set[str] = set()
    for p in found:
        if p.via_item in used and len(found) > limit:
            continue
        out.append(p)
        used.add(p.via_item)
        if len(out) == limit:
            break
    return out


def _assert_full_search(
    ex: PathExplainer, history: list[str], items: list[str], limit: int = 3
) -> list[list[Path3]]:
    """Each item's paths from the user's support equal the full search's; returns the latter."""
    support = ex.support(history)
    expected = [_paths_before(ex, history, item, limit) for item in items]
    assert [ex.paths(history, item, limit=limit, support=support) for item in items] == expected
    return expected


def test_explanations_from_a_users_support_equal_the_ones_before() -> None:
    rng = np.random.default_rng(1)
    triples = [
        (f"item:{i}", "HAS_THEME", f"entity:Theme:t{rng.integers(0, 12)}")
        for i in range(60)
        for _ in range(3)
    ]
    ex = PathExplainer(triples)
    history = [str(i) for i in range(0, 60, 3)]
    expected = _assert_full_search(ex, history, [str(i) for i in range(60)])
    assert sum(bool(paths) for paths in expected) > 30


def test_explanations_keep_limit_candidates_per_entity_and_equal_the_full_search() -> None:
    # long histories sharing a few common entities (many paths per entity, ties in weight):
    # the search keeps only the first `limit` candidates per entity and must still pick exactly
    # the paths the full search picks, for every limit (with limit - 1 kept, this fails)
    rng = np.random.default_rng(7)
    triples = [
        (f"item:{i}", "HAS_GENRE", f"entity:Genre:g{rng.integers(0, 4)}")
        for i in range(300)
        for _ in range(2)
    ] + [(f"item:{i}", "DIRECTED_BY", f"entity:Person:p{i % 37}") for i in range(0, 300, 2)]
    ex = PathExplainer(triples)
    explained = 0
    for size in (1, 2, 5, 40, 250):
        history = [str(i) for i in rng.choice(300, size=size, replace=False)]
        for limit in (1, 2, 3, 5):
            expected = _assert_full_search(ex, history, [str(i) for i in range(0, 300, 7)], limit)
            explained += sum(len(paths) == limit for paths in expected)
    assert explained > 500
