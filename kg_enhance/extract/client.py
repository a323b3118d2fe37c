"""LLM clients: anything that speaks the OpenAI chat-completions protocol.

:class:`OpenAICompatibleClient` uses the official ``openai`` client. Transport
failures (429, 5xx, timeouts, dropped connections) are retried with exponential
backoff and jitter, honouring ``Retry-After``; configuration failures (401, 403,
404, bad request) stop at once with a one-line :class:`LLMConfigurationError`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from kg_enhance.errors import LLMConfigurationError, ServiceUnavailableError

logger = logging.getLogger(__name__)

StructuredMode = str  # "json_schema" | "json_object" | "prompt"


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    finish_reason: str | None = None
    retries: int = 0


@dataclass
class TransportStats:
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class LLMClient(Protocol):
    """What the extraction engine needs from an LLM endpoint."""

    model: str

    async def complete(
        self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None, mode: StructuredMode
    ) -> Completion: ...

    async def detect_mode(self) -> StructuredMode: ...

    async def close(self) -> None: ...


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 409, 429)
    return False


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
    """Exponential backoff with jitter, but never shorter than the server's ``Retry-After``."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._base = wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial)
        self._max = maximum

    def __call__(self, state: RetryCallState) -> float:
        wait = self._base(state)
        exc = state.outcome.exception() if state.outcome else None
        hinted = _retry_after_seconds(exc)
        if hinted is not None:
            wait = max(wait, min(hinted, self._max))
        return wait


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = os.environ.get(api_key_env) or "not-needed"
        self._secret = os.environ.get(api_key_env)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stats = TransportStats()
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self._api_key, timeout=timeout_s, max_retries=0
        )

    async def close(self) -> None:
        await self._client.close()

    # -- structured output -------------------------------------------------------------------------
    async def detect_mode(self) -> StructuredMode:
        """Pick a structured-output mode for this server.

        llama-cpp-python's server lists its models as ``owned_by: "me"`` and wants
        ``json_object`` with a ``schema``; OpenAI, vLLM and Ollama take ``json_schema``.
        """
        try:
            models = await self._call(self._client.models.list)
        except LLMConfigurationError:
            return "json_schema"
        owners = {getattr(m, "owned_by", None) for m in getattr(models, "data", [])}
        if "me" in owners or "llamacpp" in owners:
            return "json_object"
        return "json_schema"

    @staticmethod
    def response_format(schema: dict[str, Any] | None, mode: StructuredMode) -> dict[str, Any] | None:
        if schema is None or mode == "prompt":
            return None
        if mode == "json_object":
            return {"type": "json_object", "schema": schema}
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "facts", "schema": schema, "strict": True}}
        raise ValueError(f"unknown structured output mode {mode!r}")

    async def complete(
        self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None, mode: StructuredMode
    ) -> Completion:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            kwargs["seed"] = self.seed
        fmt = self.response_format(schema, mode)
        if fmt is not None:
            kwargs["response_format"] = fmt
        before = self.stats.retries
        response = await self._call(self._client.chat.completions.create, **kwargs)
        choices = getattr(response, "choices", None) or []
        if not choices:
            text = ""
            finish = None
        else:
            text = choices[0].message.content or ""
            finish = choices[0].finish_reason
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            model=getattr(response, "model", None),
            finish_reason=finish,
            retries=self.stats.retries - before,
        )

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        def _count(state: RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            name = type(exc).__name__
            self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
            logger.info(
                "LLM call failed (%s), retry %d", _redact(str(exc), self._secret)[:200], state.attempt_number
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=_WaitHonouringRetryAfter(self.backoff_initial_s, self.backoff_max_s),
            before_sleep=_count,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await fn(*args, **kwargs)
        except openai.AuthenticationError as e:
            raise LLMConfigurationError(
                f"LLM endpoint {self.base_url}: authentication failed (401); set the API key variable named in llm.api_key_env"
            ) from e
        except openai.PermissionDeniedError as e:
            raise LLMConfigurationError(
                f"LLM endpoint {self.base_url}: permission denied (403) for model {self.model!r}; check the key's access"
            ) from e
        except openai.NotFoundError as e:
            raise LLMConfigurationError(
                f"LLM endpoint {self.base_url}: not found (404) for model {self.model!r}; check llm.base_url (it usually ends in /v1) and llm.model"
            ) from e
        except openai.BadRequestError as e:
            detail = _redact(str(getattr(e, "message", e)), self._secret)[:200]
            raise LLMConfigurationError(
                f"LLM endpoint {self.base_url}: request rejected (400: {detail}); check llm.model and llm.structured_output"
            ) from e
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            raise ServiceUnavailableError(
                f"LLM endpoint {self.base_url}: unreachable after {self.max_retries} retries ({type(e).__name__}); "
                "start it with `kg-enhance llm serve` or fix llm.base_url"
            ) from e
        except openai.APIStatusError as e:
            raise ServiceUnavailableError(
                f"LLM endpoint {self.base_url}: still failing with HTTP {e.status_code} after {self.max_retries} retries; "
                "try again later or lower llm.max_concurrency"
            ) from e
        raise AssertionError("unreachable")  # pragma: no cover


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")
