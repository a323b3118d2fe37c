"""LLM clients: anything that speaks the OpenAI chat-completions protocol.

:class:`OpenAICompatibleClient` uses the official ``openai`` client. Transport
failures (429, 5xx, timeouts, dropped connections) are retried with exponential
backoff and jitter, honouring ``Retry-After``, all within one overall deadline per call
(``llm.call_deadline_s``), so an endpoint that accepts connections but never answers
fails within it. A refused connection (nothing listening) or an unknown host is tried
only twice, half a second apart. Configuration failures (401, 403, 404, bad request)
stop at once with a one-line :class:`LLMConfigurationError`. Every message names the
endpoint without credentials, and its hint fits it: ``kg-enhance llm serve`` for a
loopback URL, the URL and the network for a remote one.

:meth:`OpenAICompatibleClient.server_info` asks ``GET /models`` once: which model
actually answers (the configured name when the server lists it, otherwise what it
serves, e.g. llama.cpp, which accepts any name) and which structured-output mode fits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential,
    wait_random,
)

from kg_enhance.errors import EmbeddingResponseError, LLMConfigurationError, ServiceUnavailableError

logger = logging.getLogger(__name__)

StructuredMode = str  # "json_schema" | "json_object" | "prompt"

#: attempts (first try included) for a refused connection or an unresolvable host
CONNECT_FAILURE_ATTEMPTS = 2
#: wait between those attempts, seconds
CONNECT_FAILURE_WAIT_S = 0.5


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    finish_reason: str | None = None
    retries: int = 0


def completion_from_body(body: dict[str, Any]) -> Completion:
    """A chat-completions response body (a sync answer, or a Batch API output line's ``response.body``) as a :class:`Completion`."""
    choices = body.get("choices") or []
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = first.get("message") or {}
    usage = body.get("usage") or {}
    return Completion(
        text=str(message.get("content") or ""),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        model=body.get("model"),
        finish_reason=first.get("finish_reason"),
    )


@dataclass
class TransportStats:
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerInfo:
    """What an endpoint says about itself (``GET /models``)."""

    #: the base URL, normalised and without credentials (part of the cache key)
    endpoint: str
    #: the model that answers: the configured name when listed, else the served id(s)
    served_model: str
    #: the structured-output mode that fits the server (see :func:`mode_for_owners`)
    mode: StructuredMode = "json_schema"
    model_ids: tuple[str, ...] = ()


def mode_for_owners(owners: set[str] | frozenset[str]) -> StructuredMode:
    """llama.cpp servers (``owned_by`` ``me`` or ``llamacpp``) want ``json_object`` with a schema; others ``json_schema``."""
    return "json_object" if {"me", "llamacpp"} & set(owners) else "json_schema"


class LLMClient(Protocol):
    """What the extraction engine needs from an LLM endpoint."""

    model: str
    endpoint: str

    async def complete(
        self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None, mode: StructuredMode
    ) -> Completion: ...

    async def server_info(self) -> ServerInfo: ...

    async def detect_mode(self) -> StructuredMode: ...

    async def close(self) -> None: ...


def normalise_endpoint(url: str) -> str:
    """``url`` as a cache-key part: lower-case scheme and host, no credentials, default port, query or trailing slash."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    default_port = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port is None or port == default_port else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def served_model_name(configured: str, served_ids: tuple[str, ...] | list[str]) -> str:
    """The model that answers requests for ``configured`` on a server listing ``served_ids``."""
    ids = sorted({i for i in served_ids if i})
    if not ids or configured in ids:
        return configured
    tagged = [i for i in ids if i.startswith(f"{configured}:")]  # Ollama: llama3 -> llama3:latest
    if len(tagged) == 1:
        return tagged[0]
    return ",".join(ids)  # llama.cpp answers any name with what it serves


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 409, 429)
    return False


def _connect_failure(exc: BaseException | None) -> str | None:
    """``"refused"`` (nothing listening) or ``"dns"`` (unknown host) when that is what a connection error was."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ConnectionRefusedError):
            return "refused"
        if isinstance(exc, socket.gaierror):
            return "dns"
        exc = exc.__cause__ or exc.__context__
    return None


def _retry_after_seconds(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            return None
        return seconds / 1000.0 if name.endswith("-ms") else seconds
    return None


class _WaitHonouringRetryAfter:
    """Exponential backoff with jitter, but never shorter than the server's ``Retry-After``.

    A refused connection or unknown host waits only :data:`CONNECT_FAILURE_WAIT_S`.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self._base = wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial)
        self._max = maximum

    def __call__(self, state: RetryCallState) -> float:
        wait = self._base(state)
        exc = state.outcome.exception() if state.outcome else None
        if _connect_failure(exc) is not None:
            return min(wait, CONNECT_FAILURE_WAIT_S)
        hinted = _retry_after_seconds(exc)
        if hinted is not None:
            wait = max(wait, min(hinted, self._max))
        return wait


class _Stop:
    """Stop after ``max_retries`` retries, or after :data:`CONNECT_FAILURE_ATTEMPTS` for refused/unknown hosts."""

    def __init__(self, max_retries: int) -> None:
        self._attempts = max_retries + 1

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if _connect_failure(exc) is not None and state.attempt_number >= CONNECT_FAILURE_ATTEMPTS:
            return True
        return state.attempt_number >= self._attempts


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


class OpenAICompatibleClient:
    """Chat completions through the official ``openai`` client, against any compatible server."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.0,
        max_tokens: int = 256,
        seed: int | None = 0,
        timeout_s: float = 120.0,
        max_retries: int = 6,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        call_deadline_s: float = 120.0,
        section: str = "llm",
    ) -> None:
        #: the job-file section whose settings messages point at (``llm`` or ``text_embeddings``)
        self.section = section
        self.base_url = base_url.rstrip("/")
        #: the base URL without credentials, normalised: what messages and cache keys name
        self.endpoint = normalise_endpoint(base_url)
        self.model = model
        self.api_key_env = api_key_env
        self._secret = os.environ.get(api_key_env) or None
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.call_deadline_s = call_deadline_s
        self.stats = TransportStats()
        self._info: ServerInfo | None = None
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self._secret or "not-needed", timeout=timeout_s, max_retries=0
        )

    async def close(self) -> None:
        await self._client.close()

    # -- what answers --------------------------------------------------------------------------------
    async def server_info(self) -> ServerInfo:
        """Ask ``GET /models`` once (later calls reuse the answer); see :class:`ServerInfo`.

        A server without a usable model list (404, 401, ...) is taken to serve the
        configured name; an unreachable one raises :class:`ServiceUnavailableError`.
        """
        if self._info is None:
            try:
                listing = await self._call(self._client.models.list)
            except LLMConfigurationError as e:
                logger.info(
                    "LLM endpoint %s: no model list (%s); using llm.model as the served model",
                    self.endpoint,
                    e,
                )
                self._info = ServerInfo(endpoint=self.endpoint, served_model=self.model)
            else:
                data = list(getattr(listing, "data", None) or [])
                ids = tuple(str(m.id) for m in data if getattr(m, "id", None))
                owners = frozenset(str(o) for m in data if (o := getattr(m, "owned_by", None)))
                self._info = ServerInfo(
                    endpoint=self.endpoint,
                    served_model=served_model_name(self.model, ids),
                    mode=mode_for_owners(owners),
                    model_ids=ids,
                )
        return self._info

    def adopt(self, info: ServerInfo) -> None:
        """Use ``info`` instead of asking the server (e.g. what it served last time, while it is unreachable)."""
        self._info = info

    @property
    def served_model(self) -> str:
        """The model that answers (after :meth:`server_info`; the configured name before)."""
        return self._info.served_model if self._info is not None else self.model

    # -- structured output -------------------------------------------------------------------------
    async def detect_mode(self) -> StructuredMode:
        """Pick a structured-output mode for this server (from the same ``GET /models`` as :meth:`server_info`).

        llama-cpp-python's server lists its models as ``owned_by: "me"`` and wants
        ``json_object`` with a ``schema``; OpenAI, vLLM and Ollama take ``json_schema``.
        """
        return (await self.server_info()).mode

    @staticmethod
    def response_format(schema: dict[str, Any] | None, mode: StructuredMode) -> dict[str, Any] | None:
        if schema is None or mode == "prompt":
            return None
        if mode == "json_object":
            return {"type": "json_object", "schema": schema}
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "facts", "schema": schema, "strict": True}}
        raise ValueError(f"unknown structured output mode {mode!r}")

    def request_body(
        self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None, mode: StructuredMode
    ) -> dict[str, Any]:
        """The chat-completions request for ``messages``: what :meth:`complete` sends, and a Batch API line's ``body``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        fmt = self.response_format(schema, mode)
        if fmt is not None:
            body["response_format"] = fmt
        return body

    async def complete(
        self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None, mode: StructuredMode
    ) -> Completion:
        kwargs = self.request_body(messages, schema=schema, mode=mode)
        before = self.stats.retries
        response = await self._call(self._client.chat.completions.create, **kwargs)
        dump = getattr(response, "model_dump", None)
        completion = completion_from_body(dump() if callable(dump) else {})
        completion.retries = self.stats.retries - before
        return completion

    # -- Batch API (Files + Batches endpoints) ------------------------------------------------------
    async def upload_batch_file(self, path: Path) -> str:
        """Upload a Batch API input file (``purpose="batch"``); its file id."""
        with open(path, "rb") as fh:
            data = fh.read()
        created = await self._batch_call(
            "upload the batch input file", self._client.files.create, file=(path.name, data), purpose="batch"
        )
        return str(created.id)

    async def create_batch(
        self, *, input_file_id: str, completion_window: str, metadata: dict[str, str]
    ) -> Any:
        """Create a batch of chat completions over an uploaded input file."""
        return await self._batch_call(
            "create a batch",
            self._client.batches.create,
            input_file_id=input_file_id,
            endpoint="/v1/chat/completions",
            completion_window=completion_window,
            metadata=metadata,
        )

    async def retrieve_batch(self, batch_id: str) -> Any:
        return await self._batch_call(f"retrieve batch {batch_id}", self._client.batches.retrieve, batch_id)

    async def find_batch(self, *, key: str, value: str, recent: int = 100) -> Any | None:
        """The batch among the ``recent`` newest whose ``metadata[key]`` is ``value`` (a submission a killed run made)."""
        page = await self._batch_call("list batches", self._client.batches.list, limit=min(recent, 100))
        for batch in getattr(page, "data", None) or []:
            if (getattr(batch, "metadata", None) or {}).get(key) == value:
                return batch
        return None

    async def file_content(self, file_id: str) -> bytes:
        content = await self._batch_call(f"download file {file_id}", self._client.files.content, file_id)
        return bytes(content.content)

    async def _batch_call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._call(fn, *args, **kwargs)
        except LLMConfigurationError as e:
            raise LLMConfigurationError(
                f"LLM endpoint {self.endpoint}: could not {what} ({e.one_line()}); llm.mode: batch needs an endpoint with the "
                "OpenAI Files and Batches API: use llm.mode: sync, or `kg-enhance extract --export-batch` for an offline runner"
            ) from e

    async def embed(self, texts: list[str]) -> tuple[list[Any], int]:
        """``POST /embeddings`` for ``texts`` in one request: the vectors in input order (as sent,
        unchecked: the caller validates them) and the prompt tokens the server counted."""
        response = await self._call(
            self._client.embeddings.create, model=self.model, input=texts, encoding_format="float"
        )
        data = list(getattr(response, "data", None) or [])
        indexes = sorted(int(d.index) for d in data if isinstance(getattr(d, "index", None), int))
        if indexes != list(range(len(texts))):
            raise EmbeddingResponseError(
                f"embeddings endpoint {self.endpoint}: {len(data)} vectors (indexes {indexes[:5]}...) for "
                f"{len(texts)} inputs of one request; check {self.section}.model and the server"
            )
        ordered = sorted(data, key=lambda d: int(d.index))
        usage = getattr(response, "usage", None)
        return [getattr(d, "embedding", None) for d in ordered], int(getattr(usage, "prompt_tokens", 0) or 0)

    # -- transport ---------------------------------------------------------------------------------
    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn`` with retries, every attempt and wait inside ``call_deadline_s``; failures become one-line errors."""
        attempts = 0

        def _count(state: RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            name = type(exc).__name__
            self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
            logger.info(
                "LLM call to %s failed (%s), retry %d",
                self.endpoint,
                _redact(str(exc), self._secret)[:200],
                state.attempt_number,
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            stop=_Stop(self.max_retries),
            wait=_WaitHonouringRetryAfter(self.backoff_initial_s, self.backoff_max_s),
            before_sleep=_count,
            reraise=True,
        )
        deadline = self.call_deadline_s
        started = time.monotonic()
        scope = asyncio.timeout(deadline)
        try:
            async with scope:
                async for attempt in retrying:
                    with attempt:
                        attempts += 1
                        left = deadline - (time.monotonic() - started)
                        # the last attempt ends at the deadline rather than running its full timeout
                        timeout = max(0.001, min(self.timeout_s, left))
                        return await fn(*args, timeout=timeout, **kwargs)
        except TimeoutError as e:
            if scope.expired():
                raise self._deadline_error(attempts) from e
            raise
        except openai.AuthenticationError as e:
            raise LLMConfigurationError(
                f"LLM endpoint {self.endpoint}: authentication failed (401); the API key is read from the environment "
                f"variable {self.api_key_env} (llm.api_key_env), which {self._key_state()}"
            ) from e
        except openai.PermissionDeniedError as e:
            raise LLMConfigurationError(
                f"LLM endpoint {self.endpoint}: permission denied (403) for model {self.model!r}; the API key from "
                f"{self.api_key_env} (llm.api_key_env, {'set' if self._secret else 'not set'}) lacks access: "
                "check the key's permissions or llm.model"
            ) from e
        except openai.NotFoundError as e:
            raise LLMConfigurationError(
                f"LLM endpoint {self.endpoint}: not found (404) for model {self.model!r}; check {self.section}.base_url "
                f"(it usually ends in /v1) and {self.section}.model"
            ) from e
        except openai.BadRequestError as e:
            detail = " ".join(_redact(str(getattr(e, "message", e)), self._secret).split())[:200]
            raise LLMConfigurationError(
                f"LLM endpoint {self.endpoint}: request rejected (400: {detail}); "
                + (
                    "check llm.model and llm.structured_output"
                    if self.section == "llm"
                    else f"check {self.section}.model (is it an embedding model the server serves?)"
                )
            ) from e
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            if isinstance(e, openai.APITimeoutError) and time.monotonic() - started >= deadline * 0.95:
                raise self._deadline_error(attempts) from e
            raise self._unreachable_error(e, attempts) from e
        except openai.APIStatusError as e:
            raise ServiceUnavailableError(
                f"LLM endpoint {self.endpoint}: still failing with HTTP {e.status_code} after {attempts - 1} retries; "
                "try again later or lower llm.max_concurrency"
            ) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _key_state(self) -> str:
        if self._secret:
            return "is set but the server rejected its value: check the key"
        return f"is not set: export {self.api_key_env}=<key>, or set llm.api_key_env to the variable that holds it"

    def _where(self) -> tuple[str, int | None]:
        parts = urlsplit(self.base_url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is None:
            port = {"http": 80, "https": 443}.get(parts.scheme.lower())
        return parts.hostname or "", port

    def _hint(self) -> str:
        if is_loopback(self.base_url):
            return "start the local server with `kg-enhance llm serve` or fix llm.base_url"
        return "check llm.base_url and the network (DNS, firewall, proxy, VPN)"

    def _unreachable_error(self, e: BaseException, attempts: int) -> ServiceUnavailableError:
        host, port = self._where()
        kind = _connect_failure(e)
        if kind == "refused":
            what = f"connection refused: nothing is listening on {host}:{port}"
        elif kind == "dns":
            what = f"host {host!r} could not be resolved"
        else:
            what = f"unreachable after {attempts - 1} retries ({type(e).__name__})"
        return ServiceUnavailableError(f"LLM endpoint {self.endpoint}: {what}; {self._hint()}")

    def _deadline_error(self, attempts: int) -> ServiceUnavailableError:
        deadline = f"{self.call_deadline_s:g}"
        return ServiceUnavailableError(
            f"LLM endpoint {self.endpoint}: did not answer within {deadline} s "
            f"({attempts} attempt(s), llm.timeout_s {self.timeout_s:g} s each); "
            f"if the server is just slow raise llm.call_deadline_s (now {deadline}), "
            + (
                "otherwise restart it (`kg-enhance llm stop`, then `kg-enhance llm serve`)"
                if is_loopback(self.base_url)
                else "otherwise check the server and the network"
            )
        )


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")
