"""Runs RecBole 1.2.1 models on prepared atomic files; executed inside RecBole's own venv.

Called by ``benchmarks/rec_vs_recbole.py``; prints one JSON line per model. It uses
RecBole's lower-level API (``Config``, ``create_dataset``, ``data_preparation``,
``get_model``, ``get_trainer``) instead of ``quick_start``, which imports ray, and
applies the shims RecBole 1.2.1 needs on current numpy, scipy and torch:

* numpy >= 2 removed ``np.float``, ``np.int``, ``np.bool``, ``np.long``... aliases;
* scipy >= 1.13 removed ``dok_matrix._update`` (used when RecBole builds the
  interaction matrix of graph models);
* torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, which
  RecBole's saved checkpoints fail: ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``;
* KGAT (run in its own venv with DGL 2.1, see ``rec_vs_recbole.kgat_python``) calls two DGL
  functions by their DGL 0.6 names, renamed since with the same computation:
  ``dgl.edge_subgraph(..., preserve_nodes=True)`` is ``relabel_nodes=False`` (DGL 0.7), and
  ``DGLGraph.adjacency_matrix(transpose, ctx, scipy_fmt)`` is ``adj_external`` (DGL 1.1; rows are
  edge sources unless ``transpose``, as before). :func:`_dgl_renames` maps the old calls.

Training follows the benchmark protocol, not RecBole's quick defaults: validation every
``--eval-step`` epochs (5), patience ``--stopping-step`` evaluations (10), up to
``--epochs`` epochs (500); ``--params`` (JSON) overrides any RecBole setting (a tuner's
trial). Each row reports the validation curve's best epoch, so a run that stopped while
warming up can be flagged. With ``--top-out DIR`` the best model's top-K items of every
test user are written to ``DIR/<model>.top.json`` (user token -> item tokens, training and
validation items excluded as RecBole does), so the caller scores them with its own
evaluator, per user, with the same code as its own models.

    python recbole_runner.py CONFIG_YAML MODEL [MODEL ...] [--epochs N] [--eval-step 5]
        [--stopping-step 10] [--params JSON] [--seed S] [--top-out DIR] --device cpu|cuda
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import numpy as np  # noqa: E402

for alias, target in {
    "float": float,
    "int": int,
    "bool": bool,
    "long": int,
    "object": object,
    "str": str,
    "complex": complex,
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
    "string_": np.bytes_,
    "bool8": np.bool_,
    "NaN": np.nan,
    "Inf": np.inf,
    "infty": np.inf,
    "product": np.prod,
    "cumproduct": np.cumprod,
    "row_stack": np.vstack,
}.items():
    if alias not in np.__dict__:
        setattr(np, alias, target)

import scipy.sparse as sp  # noqa: E402

if not hasattr(sp.dok_matrix, "_update"):

    def _update(self, data):  # type: ignore[no-untyped-def]
        for key, value in dict(data).items():
            self[key] = value

    sp.dok_matrix._update = _update  # type: ignore[attr-defined]


def _dgl_renames() -> None:
    """Map the DGL 0.6 calls in RecBole 1.2.1's KGAT to their current names (module doc)."""
    import inspect

    import dgl

    edge_subgraph = dgl.edge_subgraph
    if "relabel_nodes" not in inspect.signature(edge_subgraph).parameters:
        return  # a DGL that still has the old names

    def renamed_edge_subgraph(graph, edges, *, preserve_nodes=None, **kwargs):  # type: ignore[no-untyped-def]
        if preserve_nodes is not None:
            kwargs.setdefault("relabel_nodes", not preserve_nodes)
        return edge_subgraph(graph, edges, **kwargs)

    adjacency_matrix = dgl.DGLGraph.adjacency_matrix

    def renamed_adjacency_matrix(self, transpose=None, ctx=None, scipy_fmt=None, etype=None):  # type: ignore[no-untyped-def]
        if transpose is None and ctx is None and scipy_fmt is None:
            return adjacency_matrix(self, etype=etype)
        kwargs = {"ctx": ctx} if ctx is not None else {}
        return self.adj_external(transpose=bool(transpose), scipy_fmt=scipy_fmt, etype=etype, **kwargs)

    dgl.edge_subgraph = renamed_edge_subgraph
    dgl.DGLGraph.adjacency_matrix = renamed_adjacency_matrix


def _top_k(trainer, test_data, dataset, k: int) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Top-``k`` item tokens per test user from the loaded best model (history masked by RecBole)."""
    import torch

    uid, iid = dataset.uid_field, dataset.iid_field
    out: dict[str, list[str]] = {}
    trainer.model.eval()
    with torch.no_grad():
        for batched in test_data:
            interaction, scores, _, _ = trainer._full_sort_batch_eval(batched)
            top = torch.topk(scores, k, dim=-1).indices.cpu().numpy()
            users = interaction[uid].cpu().numpy()
            user_tokens = dataset.id2token(uid, users)
            for user, row in zip(user_tokens, top, strict=True):
                out[str(user)] = [str(t) for t in dataset.id2token(iid, row)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--epochs", type=int, default=500, help="max epochs (early stopping on validation)")
    parser.add_argument("--eval-step", type=int, default=5, help="validate every this many epochs")
    parser.add_argument("--stopping-step", type=int, default=10, help="patience, in evaluations")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--params", default="{}", help="JSON of RecBole settings for every model given")
    parser.add_argument("--top-out", default=None, help="folder for <model>.top.json (test top-K per user)")
    args = parser.parse_args()

    import logging

    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    logging.disable(logging.CRITICAL)
    torch.set_num_threads(max(1, int(os.environ.get("RECBOLE_THREADS", os.cpu_count() or 1))))
    extra = json.loads(args.params)
    if "KGAT" in args.models:
        _dgl_renames()
    for name in args.models:
        overrides = {
            "seed": args.seed,
            "reproducibility": True,
            "use_gpu": args.device == "cuda",
            "device": args.device,
            "embedding_size": args.dim,
            "train_batch_size": 2048,
            "eval_batch_size": 4096,
            "epochs": args.epochs,
            "eval_step": args.eval_step,
            "stopping_step": args.stopping_step,
            "show_progress": False,
            "save_dataset": False,
            "save_dataloaders": False,
            "checkpoint_dir": os.path.join(
                os.path.dirname(os.path.abspath(args.config)), "saved", f"{name}-{os.getpid()}"
            ),
            "log_wandb": False,
            "state": "ERROR",
            **extra,
        }
        try:
            config = Config(model=name, config_file_list=[args.config], config_dict=overrides)
            init_seed(config["seed"], config["reproducibility"])
            dataset = create_dataset(config)
            train_data, valid_data, test_data = data_preparation(config, dataset)
            init_seed(config["seed"], config["reproducibility"])
            model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
            trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
            curve: list[tuple[int, float]] = []
            epochs_run = [0]
            train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

            def counted_train(*a, _run=epochs_run, _train=train_epoch, **kw):  # type: ignore[no-untyped-def]
                _run[0] += 1
                return _train(*a, **kw)

            def recorded_valid(*a, _run=epochs_run, _curve=curve, _valid=valid_epoch, **kw):  # type: ignore[no-untyped-def]
                score, result = _valid(*a, **kw)
                _curve.append((_run[0], float(score)))
                return score, result

            trainer._train_epoch, trainer._valid_epoch = counted_train, recorded_valid
            started = time.perf_counter()
            best_valid, _ = trainer.fit(
                train_data, valid_data, saved=True, show_progress=False, verbose=False
            )
            seconds = time.perf_counter() - started
            result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
            best_epoch = max(curve, key=lambda c: c[1])[0] if curve else 0  # first epoch of the best score
            row = {
                "model": name,
                "seed": args.seed,
                "params": extra,
                "train_seconds": round(seconds, 2),
                "epochs": epochs_run[0],
                "best_epoch": best_epoch,
                "best_valid": float(best_valid),
                "valid_curve": curve,
                **{k: float(v) for k, v in result.items()},
            }
            if args.top_out:
                k = int(config["topk"][0])
                path = os.path.join(args.top_out, f"{name}.top.json")
                os.makedirs(args.top_out, exist_ok=True)
                with open(path, "w", encoding="utf-8") as fh:
                    json.dump(_top_k(trainer, test_data, dataset, k), fh)
                row["top"] = path
            for leftover in os.listdir(config["checkpoint_dir"]):
                os.remove(os.path.join(config["checkpoint_dir"], leftover))
        except Exception as e:  # noqa: BLE001 - report the model as failed, run the others
            row = {
                "model": name,
                "seed": args.seed,
                "params": extra,
                "error": f"{type(e).__name__}: {str(e)[:300]}",
            }
        print(json.dumps(row), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
