"""A probe, not a benchmark: do the PyKEEN TransE vectors lift.py trains for ml-latest-small depend
on torch's thread count? Prints a hash of the entity vectors; run it with 1 and with 2.

    .venv/bin/python benchmarks/probes/kge_threads.py 1
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import torch  # noqa: E402

threads = int(sys.argv[1])
torch.set_num_threads(threads)
import lift  # noqa: E402

lift.SCRATCH = REPO / ".kg-enhance" / f"kge-threads-{threads}"  # its RecBole export, not lift.py's
got = {}
train = lift.train_kge


def capture(*args, **kwargs):  # type: ignore[no-untyped-def]
    got["emb"] = train(*args, **kwargs)
    return got["emb"]


lift.train_kge = capture
started = time.time()
lift.ml_latest_small(lift.validate_job(lift.JOB))
vectors = got["emb"].entity_vectors
digest = hashlib.sha256(vectors.tobytes()).hexdigest()[:16]
print(f"threads {threads}: entity vectors {vectors.shape}, sha256 {digest}, {time.time() - started:.0f}s")
