"""Recommender building blocks on the bundled MovieLens data: graph models learn, slices, explanations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kg_enhance import api
from kg_enhance.config.job import load_job
from kg_enhance.config.models import RecModelSpec, RecommenderConfig
from kg_enhance.datasets.movielens import DEMO_DIR
from kg_enhance.rec.data import make_split, positives
from kg_enhance.rec.evaluate import RankingEvaluator, Slices, long_tail_mask
from kg_enhance.rec.kg import KGInputs
from kg_enhance.rec.models import KGHybrid, LightGCN, normalised_adjacency
from kg_enhance.rec.serve import PathExplainer
from kg_enhance.rec.train import NegativeSampler, sample_user_rows, tail_slots_of, top_k, train_model
from kg_enhance.stages.recommend import recommend_split
from tests.support.helpers import run_models_in_memory


@pytest.fixture(scope="module")
def split():  # type: ignore[no-untyped-def]
    df = pd.read_csv(DEMO_DIR / "ratings.csv", dtype=str)
    df = df.rename(columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"})
    df["rating"] = df["rating"].astype(float)
    df["ts"] = df["ts"].astype(int)
    return make_split(positives(df, 4.0), kind="user_random", seed=0)


def test_normalised_adjacency_is_symmetric_with_degree_weights() -> None:
    adj = normalised_adjacency(4, np.array([[0, 1], [0, 2], [0, 3], [0, 1]])).to_dense()
    assert torch.allclose(adj, adj.T)
    assert adj[0, 1].item() == pytest.approx(1 / np.sqrt(3 * 1))  # duplicate edges count once
    assert adj[1, 2].item() == 0


@pytest.mark.parametrize("model", ["lightgcn", "kg_lightgcn"])
def test_graph_models_learn_on_movielens(split, model: str) -> None:  # type: ignore[no-untyped-def]
    cfg = RecommenderConfig(epochs=4, dim=32, k=20, patience=4)
    kg = None
    if model == "kg_lightgcn":  # a KG where items share genre entities, with random vectors
        rng = np.random.default_rng(0)
        edges = np.array([[i, i % 7] for i in range(split.n_items)])
        kg = KGInputs(
            item_vectors=torch.from_numpy(rng.normal(size=(split.n_items, 16)).astype(np.float32)),
            item_mask=torch.ones(split.n_items),
            entity_vectors=torch.from_numpy(rng.normal(size=(7, 16)).astype(np.float32)),
            item_entity_edges=edges,
            entity_keys=[f"Genre:{n}" for n in range(7)],
        )
    slices = Slices.from_split(split)
    trained = train_model(RecModelSpec(type=model), split, cfg, kg=kg, progress=False, slices=slices)
    random_recall = 20 / split.n_items
    assert trained.test["recall@20"] > 2 * random_recall
    assert set(trained.slices) == {"long_tail", "few_interactions"}
    assert 0 <= trained.slices["long_tail"]["recall@20"] <= 1
    # the slices come from the test ranking: the same as ranking each slice on its own
    with torch.no_grad():
        ranked = slices.evaluate(trained.model.representations(), split, k=20)
    assert trained.slices == ranked and ranked["long_tail"]["users"] > 0


def test_slices_follow_training_popularity(split) -> None:  # type: ignore[no-untyped-def]
    s = Slices.from_split(split, head_share=0.2, few=10)
    counts = np.bincount(split.train[:, 1], minlength=split.n_items)
    assert len(s.tail_items) == split.n_items - round(0.2 * split.n_items)
    assert max(counts[list(s.tail_items)]) <= min(np.delete(counts, list(s.tail_items)))
    users = np.bincount(split.train[:, 0], minlength=split.n_users)
    assert s.few_users == {u for u in range(split.n_users) if users[u] <= 10}


def test_explanations_prefer_rare_shared_entities() -> None:
    triples = [
        ("item:a", "HAS_GENRE", "entity:Genre:drama"),
        ("item:b", "HAS_GENRE", "entity:Genre:drama"),
        ("item:c", "HAS_GENRE", "entity:Genre:drama"),
        ("item:a", "DIRECTED_BY", "entity:Person:michael mann"),
        ("item:c", "DIRECTED_BY", "entity:Person:michael mann"),
    ]
    ex = PathExplainer(triples)
    paths = ex.paths(["a", "b"], "c")
    assert [(p.via_item, p.via_entity) for p in paths][0] == ("a", "Person:michael mann")
    assert {p.via_entity for p in paths} == {"Person:michael mann", "Genre:drama"}
    assert ex.paths(["a"], "z") == []


def _demo_fact_kg(split) -> KGInputs:  # type: ignore[no-untyped-def]
    """The bundled HetRec facts (directors, genres, countries) of the split's items, with their
    relations, and random 16-d vectors."""
    facts = pd.read_csv(DEMO_DIR / "gold_facts.tsv", sep="\t", dtype=str)
    item_row = {item: row for row, item in enumerate(split.item_ids)}
    facts = facts[facts["item_id"].isin(item_row)]
    entities = sorted(set(facts["object_type"] + ":" + facts["object"]))
    entity_row = {e: i for i, e in enumerate(entities)}
    relations = sorted(facts["relation"].unique())
    rows = np.array(
        [
            [item_row[i], entity_row[f"{t}:{o}"], relations.index(r)]
            for i, r, o, t in facts[["item_id", "relation", "object", "object_type"]].itertuples(index=False)
        ]
    )
    rng = np.random.default_rng(0)
    kg = KGInputs(
        item_vectors=torch.from_numpy(rng.normal(size=(split.n_items, 16)).astype(np.float32)),
        item_mask=torch.ones(split.n_items),
        entity_vectors=torch.from_numpy(rng.normal(size=(len(entities), 16)).astype(np.float32)),
        item_entity_edges=np.unique(rows[:, :2], axis=0),
        entity_keys=entities,
        item_entity_relations=rows,
        relation_keys=relations,
    )
    return kg


def test_kgat_trains_on_real_facts_and_beats_random(split) -> None:  # type: ignore[no-untyped-def]
    """KGAT-like attention over the bundled HetRec facts (directors, genres, countries): it learns,
    and its attention weights are a distribution over each node's edges."""
    kg = _demo_fact_kg(split)
    relations = kg.relation_keys
    cfg = RecommenderConfig(
        epochs=3, dim=16, k=20, patience=3, learning_rate=0.01, graph_batches_per_epoch=16
    )
    trained = train_model(RecModelSpec(type="kgat"), split, cfg, kg=kg, progress=False)
    assert trained.test["recall@20"] > 3 * 20 / split.n_items  # random ranking: 20 / n_items
    assert trained.history[-1]["ndcg@20"] > trained.history[0]["ndcg@20"]  # it learns
    model = trained.model
    n_rel = 2 + 2 * len(relations)
    assert model.relation.weight.shape[0] == n_rel  # interacts, its inverse, each relation and its inverse
    with torch.no_grad():
        weights = model.attention_weights(model.ego())  # type: ignore[operator]
    head = model.get_buffer("edge_head")
    sums = torch.zeros(model.n_nodes).index_add(0, head, weights)  # type: ignore[arg-type]
    has_edges = torch.bincount(head, minlength=int(model.n_nodes)) > 0  # type: ignore[arg-type]
    assert torch.allclose(sums[has_edges], torch.ones(int(has_edges.sum())), atol=1e-5)
    assert len(torch.unique(weights)) > 1  # not a uniform mean


def test_kg_hybrid_channels_by_hand() -> None:
    """The collaborative half is LightGCN's (facts do not touch its graph); the knowledge half is, per
    item, the relation-weighted mean of its entities and, per user, the mean of its training items."""
    train = np.array([[0, 0], [0, 1], [1, 1], [1, 2]])  # item 3: no interaction, shares entity 1 with item 0
    facts = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 0], [2, 2, 1], [3, 1, 1]])  # item, entity, relation
    rng = np.random.default_rng(0)
    ent = torch.from_numpy(rng.normal(size=(3, 8)).astype(np.float32))

    def hybrid(pairs: np.ndarray) -> KGHybrid:
        return KGHybrid(
            2,
            4,
            4,
            train_pairs=pairs,
            kg_vectors=torch.zeros(4, 8),
            kg_mask=torch.zeros(4),
            entity_vectors=ent,
            item_entity_edges=facts[:, :2],
            item_entity_relations=facts,
        )

    torch.manual_seed(0)
    model = hybrid(train)
    with torch.no_grad():
        model.relation.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]]))
        users, items = model.representations()
    torch.manual_seed(0)
    plain = LightGCN(2, 4, 4, train_pairs=train)
    with torch.no_grad():
        plain.user.weight.copy_(model.user.weight)
        plain.item.weight.copy_(model.item.weight)
        cf_users, cf_items = plain.representations()
    assert users.shape == (2, 8) and items.shape == (4, 8)
    assert torch.allclose(users[:, :4], cf_users) and torch.allclose(items[:, :4], cf_items)
    x, w = model.entity.weight.detach(), model.relation.detach()
    k = [
        (w[0] * x[0] + w[1] * x[1]) / 2,
        w[0] * x[0],
        w[1] * x[2],
        w[1] * x[1],
    ]
    for row, want in enumerate(k):
        assert torch.allclose(items[row, 4:], want, atol=1e-6)
    assert torch.allclose(users[0, 4:], (k[0] + k[1]) / 2, atol=1e-6)
    assert torch.allclose(users[1, 4:], (k[1] + k[2]) / 2, atol=1e-6)
    # the never-interacted item 3 scores for user 0 only through the entity it shares with item 0
    assert torch.isclose(users[0, 4:] @ items[3, 4:], (k[0] + k[1]) / 2 @ k[3])
    with torch.no_grad():
        model.relation[1] = 0.0  # relation 1 (item 3's only fact) carries no weight: nothing to share
        users_0, items_0 = model.representations()
    assert float(users_0[0, 4:] @ items_0[3, 4:]) == 0.0
    with torch.no_grad():
        model.relation.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]]))
    # BPR scores the positive against its user's knowledge vector with the positive left out (FISM):
    # user 0 has items {0, 1}; for the positive 0 that is k[1] alone; the negative 3 sees the full mean
    loss, _ = model.bpr_terms(torch.tensor([0]), torch.tensor([0]), torch.tensor([3]))
    pos = cf_users[0] @ cf_items[0] + k[1] @ k[0]
    neg = cf_users[0] @ cf_items[3] + (k[0] + k[1]) / 2 @ k[3]
    assert torch.isclose(loss, -torch.nn.functional.logsigmoid(pos - neg), atol=1e-6)
    # a user with a single item has nothing left: its positive scores through the collaborative half
    loss_1, _ = model.bpr_terms(torch.tensor([1]), torch.tensor([1]), torch.tensor([3]))
    model_1 = hybrid(np.array([[0, 0], [1, 1]]))
    with torch.no_grad():
        for (name, param), (name_1, param_1) in zip(
            model.named_parameters(), model_1.named_parameters(), strict=True
        ):
            assert name == name_1
            param_1.copy_(param)  # the same weights; the graph and the user means are model_1's own
        u1, i1 = model_1.representations()
        got, _ = model_1.bpr_terms(torch.tensor([1]), torch.tensor([1]), torch.tensor([3]))
    want = -torch.nn.functional.logsigmoid(u1[1, :4] @ i1[1, :4] - u1[1] @ i1[3])
    assert torch.isclose(got, want, atol=1e-6) and not torch.isclose(loss_1, got)


def test_kg_hybrid_knowledge_dropout_by_hand() -> None:
    """In training each pass keeps each fact with probability 1 - p and averages an item's kept facts;
    evaluation (``eval()``) uses every fact, as a model without dropout does."""
    facts = np.array([[0, 0, 0], [0, 1, 1], [0, 2, 0], [1, 0, 0], [2, 2, 1], [3, 1, 1]])
    rng = np.random.default_rng(1)
    ent = torch.from_numpy(rng.normal(size=(3, 8)).astype(np.float32))
    kwargs = {
        "train_pairs": np.array([[0, 0], [0, 1], [1, 1], [1, 2]]),
        "kg_vectors": torch.zeros(4, 8),
        "kg_mask": torch.zeros(4),
        "entity_vectors": ent,
        "item_entity_edges": facts[:, :2],
        "item_entity_relations": facts,
    }
    torch.manual_seed(0)
    dropped = KGHybrid(2, 4, 4, knowledge_dropout=0.5, **kwargs)
    torch.manual_seed(0)
    full = KGHybrid(2, 4, 4, **kwargs)
    x, w = dropped.entity.weight.detach(), dropped.relation.detach()
    item, entity, relation = (dropped.get_buffer(b) for b in ("fact_item", "fact_entity", "fact_relation"))
    torch.manual_seed(7)
    keep = torch.rand(len(item)) >= 0.5
    torch.manual_seed(7)
    with torch.no_grad():
        _, k = dropped.knowledge()
    assert 0 < int(keep.sum()) < len(item)  # this seed drops some facts and keeps some
    for i in range(4):
        kept = [j for j in range(len(item)) if int(item[j]) == i and keep[j]]
        want = sum((x[entity[j]] * w[relation[j]] for j in kept), torch.zeros(4)) / max(1, len(kept))
        assert torch.allclose(k[i], want, atol=1e-6), i
    with torch.no_grad():
        _, again = dropped.knowledge()
        dropped.eval()
        _, k_eval = dropped.knowledge()
        full.eval()
        _, k_full = full.knowledge()
    assert not torch.allclose(again, k)  # a new draw every pass
    assert torch.allclose(k_eval, k_full)
    with pytest.raises(ValueError, match="knowledge_dropout"):
        KGHybrid(2, 4, 4, knowledge_dropout=1.0, **kwargs)


def test_kg_hybrid_learns_on_real_facts(split) -> None:  # type: ignore[no-untyped-def]
    """Trained on the bundled HetRec facts it beats random, the knowledge channel is used, and the
    relation weights move away from 1 (directors, genres and countries are weighed differently)."""
    kg = _demo_fact_kg(split)
    relations = kg.relation_keys
    cfg = RecommenderConfig(
        epochs=4, dim=16, k=20, patience=4, learning_rate=0.01, graph_batches_per_epoch=16
    )
    trained = train_model(RecModelSpec(type="kg_hybrid"), split, cfg, kg=kg, progress=False)
    assert trained.test["recall@20"] > 3 * 20 / split.n_items
    assert trained.history[-1]["ndcg@20"] > trained.history[0]["ndcg@20"]
    model = trained.model
    assert model.relation.shape == (len(relations), 16)
    assert not torch.allclose(model.relation[0], model.relation[1])  # relations weighed differently
    # the knowledge channel changes the lists: without it most users get a different top 20
    with torch.no_grad():
        users, items = model.representations()
        full = (users @ items.T).topk(20).indices
        cf = (users[:, :16] @ items[:, :16].T).topk(20).indices
    changed = (torch.sort(full).values != torch.sort(cf).values).any(-1).float().mean()
    assert float(changed) > 0.5


def test_early_stopping_ranks_a_fixed_user_sample_and_reports_on_every_user(split) -> None:  # type: ignore[no-untyped-def]
    rows = sample_user_rows(split.valid, 30, seed=3)
    users = np.unique(rows[:, 0])
    assert len(users) == 30 and set(users) <= set(split.valid[:, 0])
    # every validation row of a chosen user is kept, none of the others
    assert len(rows) == int(np.isin(split.valid[:, 0], users).sum())
    assert np.array_equal(rows, sample_user_rows(split.valid, 30, seed=3))
    assert sample_user_rows(split.valid, None, seed=3) is split.valid
    assert sample_user_rows(split.valid, 10**6, seed=3) is split.valid

    all_users = len(np.unique(split.valid[:, 0]))
    spec = RecModelSpec(type="bpr_mf")
    capped = train_model(spec, split, RecommenderConfig(epochs=3, dim=16, valid_max_users=30), progress=False)
    full = train_model(spec, split, RecommenderConfig(epochs=3, dim=16, valid_max_users=None), progress=False)
    assert capped.validation_users == {"rounds": 30, "all": all_users}
    assert full.validation_users == {"rounds": all_users, "all": all_users}
    # the rounds differ (a sample), the reported metrics are over every user: same weights, same figures
    assert [h["ndcg@20"] for h in capped.history] != [h["ndcg@20"] for h in full.history]
    if capped.best_epoch == full.best_epoch:
        assert capped.valid == full.valid and capped.test == full.test
    assert capped.valid["users"] == full.valid["users"] == all_users


def test_the_hash_split_keeps_every_pair_on_its_side_when_others_arrive() -> None:
    df = pd.read_csv(DEMO_DIR / "ratings.csv", dtype=str)
    df = df.rename(columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"})
    df["rating"], df["ts"] = df["rating"].astype(float), df["ts"].astype(int)
    pos = positives(df, 4.0)

    def sides(frame: pd.DataFrame, seed: int = 0) -> dict[tuple[str, str], str]:
        s = make_split(frame, kind="user_hash", seed=seed)
        return {
            (s.user_ids[u], s.item_ids[i]): side
            for side, rows in (("train", s.train), ("valid", s.valid), ("test", s.test))
            for u, i in rows.tolist()
        }

    full = sides(pos)
    fewer = sides(pos.sample(frac=0.9, random_state=1))  # 10% of the interactions not there yet
    changed = [p for p, side in fewer.items() if full[p] != side]
    # only users that drop below the 3-positive minimum move (into training); nobody else changes side
    assert all(full[p] != "train" and side == "train" for p, side in fewer.items() if p in changed)
    assert len(changed) < 0.01 * len(fewer)
    shares = pd.Series(list(full.values())).value_counts(normalize=True)
    assert 0.07 < shares["test"] < 0.13 and 0.07 < shares["valid"] < 0.13
    other = sides(pos, seed=1)
    assert sum(full[p] == "test" and other[p] == "test" for p in full) < 0.3 * shares["test"] * len(full)


def test_popularity_negatives_follow_training_counts_skip_the_users_items_and_uniform_is_unchanged(
    split,
) -> None:  # type: ignore[no-untyped-def]
    counts = np.bincount(split.train[:, 1], minlength=split.n_items)
    uniform = NegativeSampler(split, RecommenderConfig(exclude_seen_negatives=False))
    assert uniform.cdf is None
    users = np.random.default_rng(9).integers(0, split.n_users, 1000)
    np.testing.assert_array_equal(  # the uniform path draws what training always drew
        uniform.sample(np.random.default_rng(3), users),
        np.random.default_rng(3).integers(0, split.n_items, 1000),
    )
    sampler = NegativeSampler(split, RecommenderConfig(negatives="popularity", negative_alpha=1.0))
    drawn = sampler._draw(np.random.default_rng(0), 400_000)  # the table alone, before redrawing
    assert drawn.min() >= 0 and drawn.max() < split.n_items
    expected = (counts + 1.0) / (counts + 1.0).sum()
    seen = np.bincount(drawn, minlength=split.n_items) / len(drawn)
    top = np.argsort(-counts)[:20]  # the most popular items: drawn about (n + 1) / sum(n + 1) of the time
    np.testing.assert_allclose(seen[top], expected[top], rtol=0.1)
    assert seen[counts == 0].sum() == pytest.approx(expected[counts == 0].sum(), rel=0.1)
    # alpha 0.5 flattens it: the head is drawn less often than with alpha 1, more than uniformly
    half = NegativeSampler(split, RecommenderConfig(negatives="popularity", negative_alpha=0.5))
    share = np.isin(half._draw(np.random.default_rng(0), 200_000), top).mean()
    assert 20 / split.n_items < share < seen[top].sum()
    # what training gets: no negative is one of its user's training items, though raw draws often are
    train_keys = set(map(tuple, split.train.tolist()))
    batch_users = split.train[:, 0]
    raw = sampler._draw(np.random.default_rng(1), len(batch_users))
    assert sum((u, i) in train_keys for u, i in zip(batch_users.tolist(), raw.tolist(), strict=True)) > 50
    negatives = sampler.sample(np.random.default_rng(1), batch_users)
    assert not any(
        (u, i) in train_keys for u, i in zip(batch_users.tolist(), negatives.tolist(), strict=True)
    )


def test_uniform_negatives_can_exclude_the_users_training_items(split) -> None:  # type: ignore[no-untyped-def]
    train_keys = set(map(tuple, split.train.tolist()))
    users = split.train[:, 0]

    def collisions(drawn: np.ndarray) -> int:
        return sum((u, i) in train_keys for u, i in zip(users.tolist(), drawn.tolist(), strict=True))

    plain = NegativeSampler(split, RecommenderConfig(exclude_seen_negatives=False))
    assert collisions(plain.sample(np.random.default_rng(4), users)) > 100  # the user's own items come up
    excluding = NegativeSampler(split, RecommenderConfig())  # the default, as RecBole samples
    drawn = excluding.sample(np.random.default_rng(4), users)
    assert collisions(drawn) == 0
    assert drawn.min() >= 0 and drawn.max() < split.n_items
    # still uniform over the items the user has not seen: every item comes up, none dominates
    counts = np.bincount(drawn, minlength=split.n_items)
    assert (counts > 0).mean() > 0.95 and counts.max() < 5 * len(drawn) / split.n_items


def test_xavier_init_follows_the_table_shape_and_sets_the_kg_scale(split) -> None:  # type: ignore[no-untyped-def]
    from kg_enhance.rec.models import KGLightGCN, LightGCN, init_std

    torch.manual_seed(0)
    normal = LightGCN(split.n_users, split.n_items, 64, train_pairs=split.train)
    xavier = LightGCN(split.n_users, split.n_items, 64, train_pairs=split.train, init="xavier")
    assert float(normal.user.weight.detach().std()) == pytest.approx(0.1, rel=0.05)
    for table, rows in ((xavier.user.weight, split.n_users), (xavier.item.weight, split.n_items)):
        bound = np.sqrt(6 / (rows + 64))  # Glorot-uniform, as RecBole initialises its LightGCN
        assert float(table.detach().abs().max()) <= bound
        assert float(table.detach().std()) == pytest.approx(init_std(rows, 64, "xavier"), rel=0.05)
    with pytest.raises(ValueError, match="init must be one of"):
        LightGCN(split.n_users, split.n_items, 8, train_pairs=split.train, init="zeros")
    # kg_lightgcn brings its KG vectors in at the spread of the item table's initialisation
    rng = np.random.default_rng(0)
    kg = {
        "kg_vectors": torch.from_numpy(rng.normal(size=(split.n_items, 16)).astype(np.float32)),
        "kg_mask": torch.ones(split.n_items),
        "entity_vectors": torch.from_numpy(rng.normal(size=(7, 16)).astype(np.float32)),
        "item_entity_edges": np.array([[i, i % 7] for i in range(split.n_items)]),
    }
    for init in ("normal", "xavier"):
        model = KGLightGCN(split.n_users, split.n_items, 64, train_pairs=split.train, init=init, **kg)
        expected = init_std(split.n_items, 64, init)
        assert float(model.entity.weight.detach().std()) == pytest.approx(expected, rel=0.05)


def test_training_with_popularity_negatives_learns_and_lifts_the_long_tail(split) -> None:  # type: ignore[no-untyped-def]
    base = {"epochs": 20, "dim": 32, "k": 20, "patience": 6, "seed": 1}
    slices = Slices.from_split(split)
    runs = {
        name: train_model(
            RecModelSpec(type="bpr_mf"),
            split,
            RecommenderConfig(**base, **extra),
            progress=False,
            slices=slices,
        )
        for name, extra in {
            "uniform": {},
            "popularity": {"negatives": "popularity", "negative_alpha": 1.0},
        }.items()
    }
    assert runs["popularity"].test["recall@20"] > 2 * 20 / split.n_items
    # the head is pushed down harder: more of the held-out long-tail items reach the top 20
    tail = {name: float(run.slices["long_tail"]["ndcg@20"]) for name, run in runs.items()}
    assert tail["popularity"] > tail["uniform"]


def test_tail_slots_shape_every_list_a_model_is_judged_and_served_by(split) -> None:  # type: ignore[no-untyped-def]
    cfg = RecommenderConfig(epochs=3, dim=16, k=20, tail_slots=4, seed=2)
    slices = Slices.from_split(split, head_share=cfg.head_share)
    policy = tail_slots_of(split, cfg)
    assert policy is not None and np.array_equal(policy.tail, slices.tail_mask)
    trained = train_model(RecModelSpec(type="bpr_mf"), split, cfg, progress=False, slices=slices)
    served, _ = top_k(trained.model, split, k=20, tail_slots=policy)
    assert slices.tail_mask is not None and slices.tail_mask[served[:, -4:]].all()
    with torch.no_grad():
        reps = trained.model.representations()
        # validation (what early stopping chose by) and the slices are of the same lists, which
        # differ from plain ranking's
        valid = RankingEvaluator(
            split.valid, [split.train], n_users=split.n_users, n_items=split.n_items, k=20, tail_slots=policy
        )
        assert trained.valid == valid.evaluate(*reps)
        assert (
            valid is not None and cfg.valid_max_users is not None and len(valid.users) <= cfg.valid_max_users
        )
        assert trained.slices == slices.evaluate(reps, split, k=20, tail_slots=policy)
        plain = slices.evaluate(reps, split, k=20)
    assert trained.slices["long_tail"]["ndcg@20"] > plain["long_tail"]["ndcg@20"]
    assert trained.test["coverage@20"] > 0 and tail_slots_of(split, RecommenderConfig()) is None


def test_the_pipeline_serves_and_reports_the_lists_with_their_tail_slots(tmp_path: Path) -> None:
    job, result = run_models_in_memory(tmp_path, "[{type: bpr_mf}, {type: kg_bpr}]\n  tail_slots: 3")
    rec = result.report["recommend"]
    assert rec["tail_slots"] == 3 and rec["k"] == 20
    split = recommend_split(load_job(job))
    tail = long_tail_mask(split.train, split.n_items, 0.2)
    tail_ids = {split.item_ids[i] for i in np.nonzero(tail)[0]}
    served = pd.read_parquet(result.run.topk)
    assert served["user_id"].nunique() == split.n_users
    last = served[served["rank"] > 17]
    assert len(last) == 3 * split.n_users and last["item_id"].isin(tail_ids).all()
    # the unreserved positions are ranked plainly and hold head items too (about a fifth of them for
    # this briefly trained model), so 3 tail items at the end of every user's list are no accident
    assert served[served["rank"] <= 17]["item_id"].isin(tail_ids).mean() < 0.95
    assert "3 of 20" in api.report(job).read_text(encoding="utf-8")


def test_split_seed_fixes_the_split_while_seed_changes_the_training(tmp_path: Path) -> None:
    """Two training seeds on one split: same training, validation and test pairs, other weights."""
    runs = {
        seed: run_models_in_memory(
            tmp_path / f"s{seed}", f"[{{type: bpr_mf}}]\n  seed: {seed}\n  split_seed: 11"
        )
        for seed in (3, 4)
    }
    (job3, r3), (job4, r4) = runs[3], runs[4]
    splits = [recommend_split(load_job(job)) for job in (job3, job4)]
    spec = load_job(job3)
    by_seed = [
        recommend_split(spec.model_copy(update={"recommender": spec.recommender.model_copy(update=u)}))
        for u in ({"split_seed": None, "seed": 11}, {"split_seed": None})
    ]
    for part in ("train", "valid", "test"):
        assert np.array_equal(getattr(splits[0], part), getattr(splits[1], part))
        assert np.array_equal(getattr(splits[0], part), getattr(by_seed[0], part))  # the seed-11 split
    assert not np.array_equal(splits[0].test, by_seed[1].test)  # seed 3 alone would split otherwise
    reported = [r.report["recommend"]["split"] for r in (r3, r4)]
    assert [(s["seed"], s["training_seed"]) for s in reported] == [(11, 3), (11, 4)]
    assert reported[0]["test"] == reported[1]["test"] == len(splits[0].test)
    # the stage itself trained on the same pairs (a count alone would not tell: user_random holds out
    # round(10%) of each user whatever the seed)
    trained_on = [pd.read_parquet(r.run.train_pairs) for r in (r3, r4)]
    assert len(trained_on[0]) == len(splits[0].train) and trained_on[0].equals(trained_on[1])
    # the training seed still counts: other initial weights and negatives, other scores
    assert r3.report["recommend"]["bpr_mf"]["test"] != r4.report["recommend"]["bpr_mf"]["test"]


def test_kg_hybrid_runs_from_a_job_file_and_serves_every_user(tmp_path: Path) -> None:
    """Usable from YAML like the others: trained, reported, and its top-K served with KG paths."""
    job, result = run_models_in_memory(tmp_path, "[{type: kg_hybrid, params: {layers: 2}}]")
    rec = result.report["recommend"]
    assert rec["kg_item_coverage"] > 0.5 and rec["kg_hybrid"]["epochs"] == 3
    split = recommend_split(load_job(job))
    assert rec["kg_hybrid"]["test"]["recall@20"] > 3 * 20 / split.n_items  # random ranking: 20 / n_items
    served = pd.read_parquet(result.run.topk)
    assert served["user_id"].nunique() == split.n_users and set(served["model"]) == {"kg_hybrid"}
    assert rec["serving"]["explained_share"] > 0.9  # KG paths from the user's history to the item


def test_learning_rate_comes_from_the_model_entry_then_the_job_then_the_model(
    split,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kg_enhance.rec.models import BPRMF
    from kg_enhance.rec.train import learning_rate_for

    unset = RecommenderConfig()
    assert unset.learning_rate is None
    assert learning_rate_for(RecModelSpec(type="bpr_mf"), unset) == BPRMF.default_learning_rate == 0.005
    monkeypatch.setattr(LightGCN, "default_learning_rate", 0.02)  # a model with a default of its own
    assert learning_rate_for(RecModelSpec(type="lightgcn"), unset) == 0.02
    assert learning_rate_for(RecModelSpec(type="bpr_mf"), unset) == 0.005
    job_rate = RecommenderConfig(learning_rate=0.001)
    assert learning_rate_for(RecModelSpec(type="lightgcn"), job_rate) == 0.001
    assert learning_rate_for(RecModelSpec(type="lightgcn", learning_rate=0.3), job_rate) == 0.3
    # the ablation's and noise curve's bare models keep the rate the job gives their type, not its params
    from kg_enhance.rec.train import bare_spec

    job = RecommenderConfig(models=[RecModelSpec(type="lightgcn", learning_rate=0.02, params={"layers": 1})])
    bare = bare_spec("lightgcn", job)
    assert (bare.learning_rate, bare.params, learning_rate_for(bare, job)) == (0.02, {}, 0.02)
    assert bare_spec("bpr_mf", job).learning_rate is None and bare_spec("lightgcn", job, text=True).text

    # training uses it: a model entry's near-zero rate leaves the weights where they started,
    # whatever the job's rate, while the job's rate moves them
    cfg = RecommenderConfig(epochs=1, dim=8, k=20, patience=1, learning_rate=0.05)
    torch.manual_seed(cfg.seed)
    start = BPRMF(split.n_users, split.n_items, cfg.dim).user.weight.detach().clone()
    still = train_model(RecModelSpec(type="bpr_mf", learning_rate=1e-12), split, cfg, progress=False)
    moved = train_model(RecModelSpec(type="bpr_mf"), split, cfg, progress=False)
    assert torch.allclose(still.model.user.weight.detach(), start, atol=1e-6)
    assert not torch.allclose(moved.model.user.weight.detach(), start, atol=1e-3)
    assert (still.learning_rate, moved.learning_rate) == (1e-12, 0.05)
    assert still.report()["learning_rate"] == 1e-12
