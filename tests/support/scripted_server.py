"""A scripted OpenAI-compatible HTTP server for tests: real HTTP, real ``openai`` client.

Each request to ``/v1/chat/completions`` takes the next step of the script:
``Step(status, body_text | None, headers, delay_s, finish_reason)``. A 200 step's text
becomes the assistant message. Requests are recorded (time, JSON body) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
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


class ScriptedServer:
    def __init__(self, script: list[Step], *, owned_by: str = "vllm") -> None:
        self.script = list(script)
        self.owned_by = owned_by
        self.requests: list[tuple[float, dict[str, Any]]] = []
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
                    self._send(
                        200,
                        json.dumps(
                            {
                                "object": "list",
                                "data": [{"id": "m", "object": "model", "owned_by": server.owned_by}],
                            }
                        ),
                    )
                else:
                    self._send(404, json.dumps({"error": {"message": "not found"}}))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
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

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
