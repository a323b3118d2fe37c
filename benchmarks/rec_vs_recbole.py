"""Our recommenders against RecBole 1.2.1 (BPR, LightGCN, CKE, KGCN; KGIN and KGAT tried) on identical splits.

Two datasets:

1. **MovieLens demo** (from ``../shared/data`` via the bundled subset): the demo job's split
   (rating >= 4, user-random 80/10/10, seed 0) and its KG as loaded in Neo4j (HetRec gold,
   catalog genres, LLM facts), with the demo run's PyKEEN vectors. Needs ``make demo`` first.
2. **ml-100k with its Freebase KG**, read from the installed RecBole package
   (``recbole/dataset_example/ml-100k``; that KG may not be redistributed, so it is only
   read from there into a scratch folder, never copied into the project). Same rule and
   split procedure; PyKEEN vectors trained here with the demo job's ``kge`` settings.

Both libraries get the same split: ours is exported as RecBole atomic files with
``benchmark_filename`` (``kg_enhance.rec.recbole_export``), so RecBole does not re-split.
RecBole runs in its own virtual environment (``.kg-enhance/recbole-venv``, created here with
uv: recbole 1.2.1, the same torch as ours) through ``benchmarks/recbole_runner.py``.

RecBole trains under the benchmark protocol (``recbole_runner.py``): validation every 5
epochs, patience 10 evaluations, up to 500 epochs; a run whose best validation came in its
first 3 evaluations is flagged ``stopped_too_early`` and not counted as a result. KGIN
needs ``torch_scatter`` (no wheel on PyPI; built from source against the installed torch,
or fetched from PyG's wheel index) and KGAT needs ``dgl`` (PyPI's newest, 2.1.0, ships its
graphbolt library for torch <= 2.2.1 only): both are reported as failed. One seed,
default hyperparameters: the multi-seed, tuned comparison with paired tests is
``benchmarks/lift.py``.

Prints NDCG@20, Recall@20, long-tail NDCG@20 (ours) and training wall time for every model.

    .venv/bin/python benchmarks/rec_vs_recbole.py [--epochs 60] [--device cpu] [--only demo|ml100k]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from kg_enhance.api import load_embeddings, open_graph, validate_job  # noqa: E402
from kg_enhance.config.models import RecModelSpec  # noqa: E402
from kg_enhance.kge.artifacts import Embeddings  # noqa: E402
from kg_enhance.kge.train import train_kge  # noqa: E402
from kg_enhance.paths import cache_dir  # noqa: E402
from kg_enhance.rec.data import make_split, positives  # noqa: E402
from kg_enhance.rec.evaluate import Slices  # noqa: E402
from kg_enhance.rec.kg import build_kg_inputs  # noqa: E402
from kg_enhance.rec.protocol import stopped_too_early  # noqa: E402
from kg_enhance.rec.recbole_export import export_recbole  # noqa: E402
from kg_enhance.rec.train import train_model  # noqa: E402
from kg_enhance.rundir import RunDir  # noqa: E402
from kg_enhance.stages.recommend import recommend_split  # noqa: E402

VENV = REPO / ".kg-enhance" / "recbole-venv"
SCRATCH = REPO / ".kg-enhance" / "recbole-bench"
OURS = ["bpr_mf", "lightgcn", "kg_bpr", "kg_lightgcn"]
THEIRS = ["BPR", "LightGCN", "CKE", "KGCN", "KGIN", "KGAT"]


def _python_from_env(variable: str) -> Path | None:
    """The interpreter an environment variable names, as an absolute path; exits when it is not found."""
    given = os.environ.get(variable)
    if not given:
        return None
    found = shutil.which(given)
    if not found:
        sys.exit(f"error: {variable}={given}: no such program")
    # absolute, since RecBole runs from another folder; not resolved: a venv's python is a link
    return Path(os.path.abspath(found))


def recbole_python() -> Path:
    """The Python that runs RecBole: its own venv, created here with uv on first use.

    ``KG_ENHANCE_RECBOLE_PYTHON=PATH`` names another one that imports ``recbole`` (on a machine
    without a registry, the interpreter that has RecBole's wheels on its path)."""
    given = _python_from_env("KG_ENHANCE_RECBOLE_PYTHON")
    if given:
        return given
    py = VENV / "bin" / "python"
    if py.exists() and subprocess.run([py, "-c", "import recbole"], capture_output=True).returncode == 0:
        return py
    import torch

    uv = shutil.which("uv")
    if not uv:
        sys.exit("error: uv not found; pip install uv (the RecBole venv is created with it)")
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(VENV)], check=True)
    torch_version = torch.__version__.split("+")[0]
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "-p",
            str(py),
            "recbole==1.2.1",
            f"torch=={torch_version}",
            "numpy",
            "scipy",
        ],
        check=True,
    )
    return py


#: RecBole's KGAT imports DGL. DGL's newest PyPI wheel (2.1.0) ships its graphbolt library only for
#: torch 2.0.0-2.2.1, so with our torch it does not import ("Cannot find DGL C++ graphbolt library").
#: KGAT runs in a venv of its own with these pins instead, all from PyPI (torchdata 0.7.1 still has the
#: datapipes DGL 2.1 imports; pydantic and PyYAML are DGL imports its wheel does not declare).
KGAT_VENV = REPO / ".kg-enhance" / "recbole-kgat-venv"
KGAT_PINS = [
    "recbole==1.2.1",
    "torch==2.2.1",
    "dgl==2.1.0",
    "torchdata==0.7.1",
    "pydantic",
    "pyyaml",
    "numpy<2",
    "scipy",
]


def kgat_python() -> Path:
    """The Python that runs RecBole's KGAT: a venv of its own (:data:`KGAT_PINS`), created with uv on
    first use (about 2.5 GB: PyPI's torch 2.2.1 is the CUDA build; 52 s here with uv's cache cold).

    ``KG_ENHANCE_RECBOLE_KGAT_PYTHON=PATH`` names another one that imports ``recbole`` and ``dgl``.
    Every other RecBole model runs in :func:`recbole_python`'s venv, on our torch; RecBole's code is
    the same 1.2.1 in both."""
    given = _python_from_env("KG_ENHANCE_RECBOLE_KGAT_PYTHON")
    if given:
        return given
    py = KGAT_VENV / "bin" / "python"
    check = [py, "-c", "import dgl, recbole.model.knowledge_aware_recommender"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return py
    uv = shutil.which("uv")
    if not uv:
        sys.exit("error: uv not found; pip install uv (RecBole's KGAT venv is created with it)")
    print(f"creating RecBole's KGAT venv in {KGAT_VENV} ({', '.join(KGAT_PINS)}; once)", flush=True)
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(KGAT_VENV)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "-p", str(py), *KGAT_PINS], check=True)
    got = subprocess.run(check, capture_output=True, text=True)
    if got.returncode != 0:
        tail = got.stderr.strip().splitlines()[-1:] or ["?"]
        sys.exit(f"error: RecBole's KGAT venv in {KGAT_VENV} does not import dgl and recbole: {tail[0]}")
    return py


def recbole_python_for(model: str) -> Path:
    """The Python that runs one RecBole model: KGAT's own venv for KGAT, RecBole's venv otherwise."""
    return kgat_python() if model == "KGAT" else recbole_python()


#: RecBole's KGIN imports torch_scatter; PyPI ships it as source only
TORCH_SCATTER = "torch-scatter==2.1.2"
#: the machine's cache (``~/.cache/kg-enhance``), like llama-cpp-python's wheel in ``.ci/setup.sh``:
#: it outlives the checkout, so a fresh clone on this machine does not build it again
WHEELS = cache_dir() / "wheels"


def ensure_torch_scatter(py: Path | None = None) -> None:
    """Install ``torch_scatter`` into RecBole's Python, built from PyPI's source against our torch.

    RecBole's KGIN needs it and PyPI has no wheel of it (PyG's wheel index, which has, is not
    reachable here). The build is a C++ extension, CPU-only unless a CUDA toolkit is present; on the
    2-core dev machine it took about 50 minutes beside another job (2026-12-01) and 7 minutes beside a
    test run (2026-12-02), 6 minutes alone (2026-12-03). The wheel is kept in the machine's cache,
    ``~/.cache/kg-enhance/wheels/torch-<version>/`` (``KG_ENHANCE_CACHE`` moves it; RecBole's venv
    has the same torch as ours, so the extension built here loads there), so a later venv or a
    fresh clone on this machine installs it at once. Opt-in
    (``lift.py --build-torch-scatter``), since it is long and only KGIN needs it."""
    import torch

    py = py or recbole_python()
    if subprocess.run([py, "-c", "import torch_scatter"], capture_output=True).returncode == 0:
        return
    uv = shutil.which("uv")
    if not uv:
        sys.exit("error: uv not found; pip install uv (torch_scatter is installed with it)")
    folder = WHEELS / f"torch-{torch.__version__.split('+')[0]}"
    wheel = next(iter(sorted(folder.glob("torch_scatter-2.1.2-*.whl"))), None)
    if wheel is None:
        cuda = shutil.which("nvcc") is not None
        print(
            f"building {TORCH_SCATTER} from source for RecBole's KGIN ({'CUDA' if cuda else 'CPU only'}; "
            f"tens of minutes on a small machine, once; kept in {folder})",
            flush=True,
        )
        got = subprocess.run(
            # our interpreter's pip against our torch (no build isolation: the build imports torch)
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", TORCH_SCATTER, "-w", str(folder)],
            env={**os.environ, **({} if cuda else {"FORCE_ONLY_CPU": "1"})},
        )  # fmt: skip
        wheel = next(iter(sorted(folder.glob("torch_scatter-2.1.2-*.whl"))), None)
        if got.returncode != 0 or wheel is None:
            sys.exit(
                f"error: building {TORCH_SCATTER} failed (exit {got.returncode}); KGIN cannot run without it"
            )
    subprocess.run([uv, "pip", "install", "-q", "-p", str(py), str(wheel)], check=True)


def run_recbole(config: Path, *, epochs: int | None, device: str, dim: int) -> list[dict[str, Any]]:
    py = recbole_python()
    proc = subprocess.run(
        [
            str(py),
            str(REPO / "benchmarks" / "recbole_runner.py"),
            str(config),
            *THEIRS,
            *(["--epochs", str(epochs)] if epochs else []),
            "--device",
            device,
            "--dim",
            str(dim),
        ],
        capture_output=True,
        text=True,
        cwd=SCRATCH,  # RecBole writes log_tensorboard/ into the working directory
        env={**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if not rows:
        rows = [{"model": "recbole", "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}]
    return rows


def run_ours(
    job: Any, split: Any, emb: Embeddings, triples: list[tuple[str, str, str]], *, epochs: int, device: str
) -> list[dict[str, Any]]:
    cfg = job.recommender.model_copy(update={"epochs": epochs, "device": device})
    kg = build_kg_inputs(emb, split, triples)
    slices = Slices.from_split(split, head_share=cfg.head_share, few=cfg.few_interactions)
    rows = []
    for name in OURS:
        trained = train_model(RecModelSpec(type=name), split, cfg, kg=kg, progress=False, slices=slices)
        rows.append(
            {
                "model": name,
                "train_seconds": round(trained.seconds, 2),
                "ndcg@20": trained.test["ndcg@20"],
                "recall@20": trained.test["recall@20"],
                "long_tail_ndcg@20": trained.slices["long_tail"]["ndcg@20"],
                "epochs": trained.epochs,
                "history": [(h["seconds"], h["ndcg@20"]) for h in trained.history],
            }
        )
    return rows


def demo_dataset(job: Any) -> tuple[Any, Embeddings, list[tuple[str, str, str]], Path]:
    split = recommend_split(job)
    with open_graph(REPO / "examples" / "jobs" / "movielens-demo.yaml") as store:
        triples = store.item_fact_triples(job.kge.sources)
    emb = load_embeddings(RunDir.for_job(job).root)
    got = export_recbole(split, triples, SCRATCH, name="kgdemo", k=job.recommender.k)
    return split, emb, triples, Path(got["dir"]) / "kgdemo.yaml"


def ml100k_source() -> Path:
    """RecBole's bundled ml-100k folder (read from the installed package, never copied).

    ``KG_ENHANCE_RECBOLE_ML100K=DIR`` names that folder of an unpacked RecBole 1.2.1 wheel instead
    (for runs of our models alone, without creating the RecBole venv)."""
    given = os.environ.get("KG_ENHANCE_RECBOLE_ML100K")
    if given:
        folder = Path(given)
        if not (folder / "ml-100k.inter").is_file():
            sys.exit(f"error: KG_ENHANCE_RECBOLE_ML100K={given}: no ml-100k.inter there")
        return folder
    where = subprocess.run(
        [str(recbole_python()), "-c", "import recbole, os; print(os.path.dirname(recbole.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(where) / "dataset_example" / "ml-100k"


def ml100k_split(job: Any, src: Path | None = None) -> Any:
    """The split of ml-100k's ratings every ml-100k benchmark uses (positives: rating >= 4)."""
    inter = pd.read_csv((src or ml100k_source()) / "ml-100k.inter", sep="\t", dtype=str)
    inter.columns = [c.split(":")[0] for c in inter.columns]
    df = pd.DataFrame(
        {
            "user_id": inter["user_id"],
            "item_id": inter["item_id"],
            "rating": inter["rating"].astype(float),
            "ts": inter["timestamp"].astype(int),
        }
    )
    return make_split(positives(df, 4.0), kind="user_random", seed=job.recommender.effective_split_seed)


def ml100k_dataset(job: Any) -> tuple[Any, Embeddings, list[tuple[str, str, str]], Path]:
    src = ml100k_source()
    split = ml100k_split(job, src)
    kg = pd.read_csv(src / "ml-100k.kg", sep="\t", dtype=str)
    kg.columns = [c.split(":")[0] for c in kg.columns]
    link = pd.read_csv(src / "ml-100k.link", sep="\t", dtype=str)
    link.columns = [c.split(":")[0] for c in link.columns]
    ent_to_item = dict(zip(link["entity_id"], link["item_id"], strict=False))

    def node(e: str) -> str:
        return f"item:{ent_to_item[e]}" if e in ent_to_item else f"entity:{e}"

    triples = [
        (node(h), r, node(t)) for h, r, t in kg[["head_id", "relation_id", "tail_id"]].itertuples(index=False)
    ]
    cfg = job.kge.model_copy(update={"epochs": min(job.kge.epochs, 30)})
    emb = train_kge(triples, cfg, progress=False)
    item_triples = [(h, r, t) for h, r, t in triples if h.startswith("item:") and t.startswith("entity:")]
    # the split's atomic files; RecBole reads the KG and link from the package copy placed beside them
    got = export_recbole(split, [], SCRATCH, name="ml100k", k=job.recommender.k)
    out = Path(got["dir"])
    shutil.copyfile(src / "ml-100k.kg", out / "ml100k.kg")
    # only links of items in the split: RecBole's KG datasets fail on a linked item without interactions
    kept = link[link["item_id"].isin(set(split.item_ids))]
    with open(out / "ml100k.link", "w", encoding="utf-8") as fh:
        fh.write("item_id:token\tentity_id:token\n")
        for item, entity in kept[["item_id", "entity_id"]].itertuples(index=False):
            fh.write(f"{item}\t{entity}\n")
    return split, emb, item_triples, out / "ml100k.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60, help="ours (max, early stopping)")
    parser.add_argument(
        "--recbole-epochs", type=int, default=None, help="default: the runner's 500 (early stopping)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=["demo", "ml100k"], default=None)
    args = parser.parse_args()
    job = validate_job(REPO / "examples" / "jobs" / "movielens-demo.yaml")
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}, device {args.device}")
    datasets = {"demo": demo_dataset, "ml100k": ml100k_dataset}
    summary = {}
    for name, build in datasets.items():
        if args.only and name != args.only:
            continue
        split, emb, triples, config = build(job)
        print(
            f"\n== {name}: {split.n_users} users, {split.n_items} items, train {len(split.train)}, "
            f"test {len(split.test)}, KG item-entity triples {len(triples)}"
        )
        ours = run_ours(job, split, emb, triples, epochs=args.epochs, device=args.device)
        theirs = run_recbole(config, epochs=args.recbole_epochs, device=args.device, dim=job.recommender.dim)
        print(
            f"{'library':10s} {'model':12s} {'NDCG@20':>8s} {'Recall@20':>9s} {'tail NDCG':>9s} {'train s':>8s}"
        )
        for row in ours:
            print(
                f"{'ours':10s} {row['model']:12s} {row['ndcg@20']:8.4f} {row['recall@20']:9.4f} "
                f"{row['long_tail_ndcg@20']:9.4f} {row['train_seconds']:8.1f}"
            )
        for row in theirs:
            if "error" in row:
                print(f"{'recbole':10s} {row['model']:12s} failed: {row['error']}")
                continue
            print(
                f"{'recbole':10s} {row['model']:12s} {row['ndcg@20']:8.4f} {row['recall@20']:9.4f} "
                f"{'-':>9s} {row['train_seconds']:8.1f}"
            )
        summary[name] = {"ours": ours, "recbole": theirs}
        for r in theirs:
            if "error" not in r and stopped_too_early(int(r.get("best_epoch", 0)), 5):
                print(
                    f"flagged: RecBole {r['model']} stopped too early (best epoch {r['best_epoch']}); not a result"
                )
        ok = [r for r in theirs if "error" not in r and not stopped_too_early(int(r.get("best_epoch", 0)), 5)]
        best_kg = max((r for r in ours if r["model"].startswith("kg_")), key=lambda r: r["ndcg@20"])
        if ok:
            best_rb = max(ok, key=lambda r: r["ndcg@20"])
            print(
                f"our best KG model {best_kg['model']} {best_kg['ndcg@20']:.4f} vs best RecBole "
                f"{best_rb['model']} {best_rb['ndcg@20']:.4f}: {'beats' if best_kg['ndcg@20'] > best_rb['ndcg@20'] else 'does not beat'} it"
            )
            lg = next((r for r in ok if r["model"] == "LightGCN"), None)
            if lg:
                faster = [
                    r
                    for r in ours
                    if r["train_seconds"] < lg["train_seconds"] and r["ndcg@20"] >= lg["ndcg@20"]
                ]
                print(
                    f"our models faster than RecBole LightGCN ({lg['train_seconds']:.1f}s) at >= its NDCG@20: "
                    f"{', '.join(r['model'] for r in faster) or 'none'}"
                )
                for r in (
                    ours
                ):  # time-to-quality: first epoch whose validation NDCG@20 reaches RecBole's test NDCG@20
                    reach = next((sec for sec, v in r["history"] if v >= lg["ndcg@20"]), None)
                    print(
                        f"  {r['model']}: validation NDCG@20 >= {lg['ndcg@20']:.4f} after "
                        + (f"{reach:.1f}s" if reach is not None else "never")
                    )
        base_tail = next(r for r in ours if r["model"] == "bpr_mf")["long_tail_ndcg@20"]
        for r in ours:
            if r["model"].startswith("kg_"):
                print(f"long tail: {r['model']} {r['long_tail_ndcg@20']:.4f} vs no-KG bpr_mf {base_tail:.4f}")
    (SCRATCH / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"\nresults: {SCRATCH / 'results.json'}")


if __name__ == "__main__":
    main()
