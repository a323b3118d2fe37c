"""A scripted OpenAI-compatible HTTP server for tests: real HTTP, real ``openai`` client.

Each request to ``/v1/chat/completions`` takes the next step of the script:
``Step(status, body_text | None, headers, delay_s, finish_reason)``. A 200 step's text
becomes the assistant message. Requests are recorded (time, JSON body) for assertions.
``GET /v1/models`` lists ``models`` (settable between runs: what the server serves),
owned by ``owned_by``; ``model_list_status`` other than 200 makes it fail with that status.

``POST /v1/embeddings`` answers from ``embed_script`` (:class:`EmbedStep`: a status, a
raw body, or a function from the request's inputs to the vectors) and, once that is
used up, with :func:`text_vector` of each input (``embed_dim`` long, deterministic per
text). Its requests are recorded in ``embed_requests``, apart from chat ones.

:class:`SilentServer` accepts TCP connections and never answers (a hung endpoint).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    status: int = 200
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    finish_reason: str = "stop"
    raw_body: str | None = None  # send this body verbatim instead of a completion


def text_vector(text: str, dim: int) -> list[float]:
    """A deterministic vector per text: the same text always gets the same vector."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [(digest[n % len(digest)] - 127.5) / 127.5 for n in range(dim)]


@dataclass
class EmbedStep:
    status: int = 200
    #: inputs -> vectors to answer (e.g. a wrong length, NaN); None: text_vector of each input
    vectors: Callable[[list[str]], list[Any]] | None = None
    raw_body: str | None = None  # send this body verbatim
    delay_s: float = 0.0


class ScriptedServer:
    def __init__(
        self,
        script: list[Step],
        *,
        owned_by: str = "vllm",
        models: list[str] | None = None,
        model_list_status: int = 200,
        port: int = 0,
    ) -> None:
        self.script = list(script)
        self.owned_by = owned_by
        self.models = list(models) if models is not None else ["m"]
        self.model_list_status = model_list_status
        self.requests: list[tuple[float, dict[str, Any]]] = []
        self.model_list_requests = 0
        self.embed_script: list[EmbedStep] = []
        self.embed_dim = 8
        self.embed_requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.endswith("/models"):
                    with server._lock:
                        server.model_list_requests += 1
                    if server.model_list_status != 200:
                        status = server.model_list_status
                        self._send(status, json.dumps({"error": {"message": f"scripted {status}"}}))
                        return
                    data = [{"id": m, "object": "model", "owned_by": server.owned_by} for m in server.models]
                    self._send(200, json.dumps({"object": "list", "data": data}))
                else:
                    self._send(404, json.dumps({"error": {"message": "not found"}}))

            def _embeddings(self, body: dict[str, Any]) -> None:
                with server._lock:
                    server.embed_requests.append(body)
                    step = server.embed_script.pop(0) if server.embed_script else EmbedStep()
                if step.delay_s:
                    time.sleep(step.delay_s)
                if step.raw_body is not None:
                    self._send(step.status, step.raw_body)
                    return
                if step.status != 200:
                    err = {
                        "error": {
                            "message": f"scripted {step.status}",
                            "type": "scripted",
                            "code": step.status,
                        }
                    }
                    self._send(step.status, json.dumps(err))
                    return
                inputs = body.get("input")
                texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
                vectors = (
                    step.vectors(texts) if step.vectors else [text_vector(t, server.embed_dim) for t in texts]
                )
                answer = {
                    "object": "list",
                    "model": body.get("model", "m"),
                    "data": [
                        {"object": "embedding", "index": n, "embedding": v} for n, v in enumerate(vectors)
                    ],
                    "usage": {"prompt_tokens": 3 * len(texts), "total_tokens": 3 * len(texts)},
                }
                self._send(200, json.dumps(answer))  # json writes NaN as NaN, as a broken server might

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("/embeddings"):
                    self._embeddings(body)
                    return
                with server._lock:
                    server.requests.append((time.monotonic(), body))
                    step = server.script.pop(0) if server.script else Step(text='{"facts": []}')
                if step.delay_s:
                    time.sleep(step.delay_s)
                if step.raw_body is not None:
                    self._send(step.status, step.raw_body, step.headers)
                    return
                if step.status != 200:
                    err = {
                        "error": {
                            "message": f"scripted {step.status}",
                            "type": "scripted",
                            "code": step.status,
                        }
                    }
                    self._send(step.status, json.dumps(err), step.headers)
                    return
                completion = {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "m"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": step.text},
                            "finish_reason": step.finish_reason,
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
                self._send(200, json.dumps(completion), step.headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SilentServer:
    """Accepts connections and reads nothing, answers nothing: an endpoint that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)  # held open, never answered

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def __enter__(self) -> SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()
