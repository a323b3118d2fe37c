"""A scripted OpenAI Batch API server for tests: real HTTP, real ``openai`` client.

No provider with a Batch API is reachable here, so this server plays one, answering
instantly: ``POST /v1/files`` (multipart upload, ``purpose=batch``), ``GET
/v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}``, ``GET
/v1/batches`` (newest first) and ``GET /v1/models``.

A batch is ``validating`` when created and ``in_progress`` while ``hold`` is set. At the
first retrieve without ``hold`` it runs: ``responder(custom_id, body, batch_number)``
decides each line, :class:`Line` ``ok`` (a 200 completion with ``text``), ``fail`` (an
HTTP error ``status`` in the error file) or ``error`` (an ``error`` object, no response),
or ``None``: the line never ran, and the batch ends ``expired`` with the other lines'
results. ``fail_batches`` names batch numbers (1-based) that fail as a whole (status
``failed`` with an ``errors`` list, no files). Everything is recorded for assertions: ``creations`` (batch id
and the custom ids of its input file), ``uploads`` and ``retrieves``.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Line:
    kind: str = "ok"  # "ok" | "fail" | "error"
    text: str = '{"facts": []}'
    status: int = 500
    prompt_tokens: int = 10
    completion_tokens: int = 5


Responder = Callable[[str, dict[str, Any], int], Line | None]


class ScriptedBatchServer:
    def __init__(
        self,
        responder: Responder,
        *,
        models: list[str] | None = None,
        owned_by: str = "openai",
        hold: bool = False,
        fail_batches: set[int] | None = None,
    ) -> None:
        self.responder = responder
        self.fail_batches = set(fail_batches or ())
        self.models = list(models) if models is not None else ["m"]
        self.owned_by = owned_by
        self.hold = hold
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.creations: list[tuple[str, list[str]]] = []
        self.uploads = 0
        self.retrieves = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes | str, ctype: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _json(self, status: int, value: Any) -> None:
                self._send(status, json.dumps(value))

            def _not_found(self) -> None:
                self._json(
                    404, {"error": {"message": f"no such path {self.path}", "type": "invalid_request_error"}}
                )

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("content-length", 0)))

            def do_GET(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                with server._lock:
                    if path.endswith("/models"):
                        data = [
                            {"id": m, "object": "model", "owned_by": server.owned_by} for m in server.models
                        ]
                        self._json(200, {"object": "list", "data": data})
                    elif path.startswith("/v1/files/") and path.endswith("/content"):
                        stored = server.files.get(path.split("/")[3])
                        if stored is None:
                            self._not_found()
                        else:
                            self._send(200, stored["data"], "application/octet-stream")
                    elif path.startswith("/v1/batches/"):
                        batch = server.batches.get(path.split("/")[3])
                        if batch is None:
                            self._not_found()
                            return
                        server.retrieves += 1
                        server._advance(batch)
                        self._json(200, server._public(batch))
                    elif path == "/v1/batches":
                        data = [
                            server._public(b)
                            for b in sorted(server.batches.values(), key=lambda b: -b["created_at"])
                        ]
                        self._json(200, {"object": "list", "data": data, "has_more": False})
                    else:
                        self._not_found()

            def do_POST(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                raw = self._body()
                with server._lock:
                    if path == "/v1/files":
                        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                            b"Content-Type: " + self.headers["content-type"].encode() + b"\r\n\r\n" + raw
                        )
                        fields: dict[str, Any] = {}
                        filename = "upload"
                        for part in message.iter_parts():
                            name = part.get_param("name", header="content-disposition")
                            fields[str(name)] = part.get_payload(decode=True)
                            if name == "file":
                                filename = str(part.get_filename() or filename)
                        purpose = (fields.get("purpose") or b"").decode()
                        if purpose != "batch" or "file" not in fields:
                            self._json(400, {"error": {"message": "purpose must be batch, with a file"}})
                            return
                        server.uploads += 1
                        self._json(200, server._store(fields["file"], filename, "batch"))
                    elif path == "/v1/batches":
                        spec = json.loads(raw or b"{}")
                        stored = server.files.get(spec.get("input_file_id", ""))
                        if stored is None or spec.get("endpoint") != "/v1/chat/completions":
                            self._json(400, {"error": {"message": "bad input_file_id or endpoint"}})
                            return
                        batch_id = f"batch_{next(server._ids)}"
                        lines = [json.loads(t) for t in stored["data"].decode().splitlines() if t.strip()]
                        server.creations.append((batch_id, [line["custom_id"] for line in lines]))
                        server.batches[batch_id] = {
                            "id": batch_id,
                            "object": "batch",
                            "endpoint": spec["endpoint"],
                            "input_file_id": spec["input_file_id"],
                            "completion_window": spec.get("completion_window", "24h"),
                            "status": "validating",
                            "created_at": time.time() + len(server.creations) * 1e-6,
                            "metadata": spec.get("metadata") or {},
                            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                            "output_file_id": None,
                            "error_file_id": None,
                            "_number": len(server.creations),
                            "_lines": lines,
                        }
                        self._json(200, server._public(server.batches[batch_id]))
                    else:
                        self._not_found()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- batch life ------------------------------------------------------------------------------------
    def _store(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file_{next(self._ids)}"
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self.files[file_id] = {**obj, "data": data}
        return obj

    @staticmethod
    def _public(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def _advance(self, batch: dict[str, Any]) -> None:
        if batch["status"] not in ("validating", "in_progress"):
            return
        if self.hold:
            batch["status"] = "in_progress"
            return
        if batch["_number"] in self.fail_batches:
            batch["status"] = "failed"
            error = {
                "code": "invalid_request",
                "message": "scripted batch failure",
                "line": None,
                "param": None,
            }
            batch["errors"] = {"object": "list", "data": [error]}
            return
        out: list[str] = []
        err: list[str] = []
        missing = 0
        for n, line in enumerate(batch["_lines"]):
            cid = line["custom_id"]
            verdict = self.responder(cid, line["body"], batch["_number"])
            rid = f"{batch['id']}_req_{n}"
            if verdict is None:
                missing += 1
            elif verdict.kind == "ok":
                completion = {
                    "id": f"chatcmpl-{n}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": line["body"].get("model", "m"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": verdict.text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": verdict.prompt_tokens,
                        "completion_tokens": verdict.completion_tokens,
                        "total_tokens": verdict.prompt_tokens + verdict.completion_tokens,
                    },
                }
                response = {"status_code": 200, "request_id": rid, "body": completion}
                out.append(json.dumps({"id": rid, "custom_id": cid, "response": response, "error": None}))
            elif verdict.kind == "fail":
                body = {"error": {"message": f"scripted {verdict.status}", "type": "server_error"}}
                response = {"status_code": verdict.status, "request_id": rid, "body": body}
                err.append(json.dumps({"id": rid, "custom_id": cid, "response": response, "error": None}))
            else:
                error = {"code": "scripted_error", "message": "scripted line error"}
                err.append(json.dumps({"id": rid, "custom_id": cid, "response": None, "error": error}))
        batch["status"] = "expired" if missing else "completed"
        batch["request_counts"] = {"total": len(batch["_lines"]), "completed": len(out), "failed": len(err)}
        if out:
            batch["output_file_id"] = self._store(
                ("\n".join(out) + "\n").encode(), "output.jsonl", "batch_output"
            )["id"]
        if err:
            batch["error_file_id"] = self._store(
                ("\n".join(err) + "\n").encode(), "errors.jsonl", "batch_output"
            )["id"]

    def submitted_lines(self) -> list[dict[str, Any]]:
        """Every input line of every created batch, in order."""
        with self._lock:
            return [line for b in self.batches.values() for line in b["_lines"]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedBatchServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
