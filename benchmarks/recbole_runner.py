"""Runs RecBole 1.2.1 models on prepared atomic files; executed inside RecBole's own venv.

Called by ``benchmarks/rec_vs_recbole.py``; prints one JSON line per model. It uses
RecBole's lower-level API (``Config``, ``create_dataset``, ``data_preparation``,
``get_model``, ``get_trainer``) instead of ``quick_start``, which imports ray, and
applies the shims RecBole 1.2.1 needs on current numpy, scipy and torch:

* numpy >= 2 removed ``np.float``, ``np.int``, ``np.bool``, ``np.long``... aliases;
* scipy >= 1.13 removed ``dok_matrix._update`` (used when RecBole builds the
  interaction matrix of graph models);
* torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, which
  RecBole's saved checkpoints fail: ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``.

RecBole's own defaults are kept (learning rate 0.001, up to 300 epochs, early stopping
after 10 epochs without a better validation NDCG@K) except the embedding size, which is
set to ours.

    python recbole_runner.py CONFIG_YAML MODEL [MODEL ...] [--epochs N] --device cpu|cuda
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("models", nargs="+")
    parser.add_argument(
        "--epochs", type=int, default=None, help="default: RecBole's own (300, early stopping)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()

    import logging

    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    logging.disable(logging.CRITICAL)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in args.models:
        overrides = {
            "seed": args.seed,
            "reproducibility": True,
            "use_gpu": args.device == "cuda",
            "device": args.device,
            "embedding_size": args.dim,
            "train_batch_size": 2048,
            "eval_batch_size": 4096,
            "stopping_step": 10,
            "eval_step": 1,
            "show_progress": False,
            "save_dataset": False,
            "save_dataloaders": False,
            "checkpoint_dir": os.path.join(os.path.dirname(os.path.abspath(args.config)), "saved"),
            "log_wandb": False,
            "state": "ERROR",
        }
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
        try:
            config = Config(model=name, config_file_list=[args.config], config_dict=overrides)
            init_seed(config["seed"], config["reproducibility"])
            dataset = create_dataset(config)
            train_data, valid_data, test_data = data_preparation(config, dataset)
            model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
            trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
            started = time.perf_counter()
            trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=False)
            seconds = time.perf_counter() - started
            result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
            row = {
                "model": name,
                "train_seconds": round(seconds, 2),
                **{k: float(v) for k, v in result.items()},
            }
        except Exception as e:  # noqa: BLE001 - report the model as failed, run the others
            row = {"model": name, "error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(json.dumps(row), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
