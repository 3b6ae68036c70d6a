"""HTTP to an OpenAI-compatible server (vLLM, SGLang, llama.cpp's server, Ollama): one pooled client,
retries with exponential backoff, and one-line errors that say what is wrong.

Why retries: a serving engine under load answers 429 or 503 for a moment and a connection may drop
while it restarts a worker; thousands of sampling requests in `train` or `eval` should ride that out
instead of failing. What is not retried: a timeout (waiting again multiplies the wait; the message says
which limit to raise), an unknown model, a bad API key, a rejected request - those need the user.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from calm_rag.errors import CalmRagError

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class ClientOptions:
    timeout_s: float = 600.0
    """Longest wait for one response: a long cot answer from a busy CPU server can take minutes."""
    connect_timeout_s: float = 10.0
    retries: int = 4
    """Extra attempts after a 429/5xx or a dropped connection."""
    backoff_s: float = 0.5
    """Wait before the first retry; doubles on each further one (0.5, 1, 2, 4 s). A `Retry-After` header
    (up to 30 s) is honoured instead."""

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise CalmRagError("server timeouts must be positive")
        if self.retries < 0 or self.backoff_s < 0:
            raise CalmRagError("retries and backoff must be >= 0")


@dataclass(frozen=True)
class ServerInfo:
    """What a look at the server found before any work is sent."""

    models: tuple[str, ...] | None
    """Served model names (ids and aliases); None when the server has no /models listing."""
    slots: int | None
    """llama.cpp's slot count (`total_slots` of /props), which caps `n` per request; None elsewhere."""
    owned_by: str | None = None
    """`owned_by` of the /models listing: vLLM says "vllm", SGLang "sglang" (their ModelCard defaults)."""

    @property
    def llamacpp(self) -> bool:
        return self.slots is not None

    @property
    def kind(self) -> str | None:
        """"llamacpp", "vllm", "sglang", or None for any other server: which server-specific requests apply."""
        if self.llamacpp:
            return "llamacpp"
        return self.owned_by if self.owned_by in ("vllm", "sglang") else None


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def error_message(response: httpx.Response) -> str:
    """The server's own words for an error: `error.message` (OpenAI, vLLM, llama.cpp), `detail`, or the text."""
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text) or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return _one_line(str(error))
    return _one_line(response.text)


class ServerClient:
    """Requests to one server. Thread-safe (httpx.Client is), so a thread pool can share it."""

    def __init__(self, base_url: str, *, api_key: str | None = None, model: str = "",
                 options: ClientOptions = ClientOptions()) -> None:
        """`base_url`: the server's OpenAI base URL, ending in /v1. `model` only names it in errors."""
        if not base_url.startswith(("http://", "https://")):
            raise CalmRagError(f"--base-url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        """Where llama.cpp's own endpoints live (/props, /apply-template)."""
        self.model = model
        self.options = options
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(options.timeout_s,
                                                                           connect=options.connect_timeout_s),
                                  limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))
        self._answered = False

    def close(self) -> None:
        self._http.close()

    def post(self, path: str, body: dict[str, Any], *, root: bool = False) -> dict[str, Any]:
        """POST JSON to `path` under the /v1 URL (or the server root) and return the JSON answer."""
        found = self._request("POST", path, body, root=root)
        assert found is not None
        return found

    def get(self, path: str, *, root: bool = False) -> dict[str, Any] | None:
        """GET `path`; None when the server has no such endpoint (404/405/501)."""
        return self._request("GET", path, None, root=root, missing_ok=True)

    def probe(self) -> ServerInfo:
        """Served models and who serves them (from /models) and, on llama.cpp, its slot count (from /props)."""
        listing = self.get("/models")
        models: tuple[str, ...] | None = None
        owners: list[str] = []
        if listing is not None and isinstance(listing.get("data"), list):
            names: list[str] = []
            for entry in listing["data"]:
                if isinstance(entry, dict):
                    names += [str(entry["id"])] if "id" in entry else []
                    names += [str(alias) for alias in entry.get("aliases") or []]
                    owners += [entry["owned_by"]] if isinstance(entry.get("owned_by"), str) else []
            models = tuple(dict.fromkeys(names))
        props = self.get("/props", root=True)
        slots = props.get("total_slots") if props is not None else None
        return ServerInfo(models=models, slots=int(slots) if isinstance(slots, int) and slots > 0 else None,
                          owned_by=owners[0] if owners else None)

    # ---- one request, with retries -----------------------------------------------------------

    def _request(self, method: str, path: str, body: dict[str, Any] | None, *, root: bool,
                 missing_ok: bool = False) -> dict[str, Any] | None:
        url = (self.root_url if root else self.base_url) + path
        last = ""
        for attempt in range(self.options.retries + 1):
            wait = self.options.backoff_s * 2 ** attempt
            try:
                response = self._http.request(method, url, json=body)
            except httpx.TimeoutException as error:
                if isinstance(error, httpx.ConnectTimeout):
                    last = "connection timed out"
                else:
                    raise CalmRagError(f"the server at {self.base_url} did not answer within "
                                       f"{self.options.timeout_s:g} s; it may be overloaded (fewer requests "
                                       "in flight: lower --batch-size) or stuck") from None
            except httpx.TransportError as error:
                last = _one_line(str(error) or type(error).__name__)
            else:
                if response.status_code < 300:
                    self._answered = True
                    return self._json(response, url)
                if missing_ok and response.status_code in (404, 405, 501):
                    return None
                if response.status_code not in RETRY_STATUS:
                    raise self._refusal(response, url)
                last = f"HTTP {response.status_code}: {error_message(response)}"
                wait = self._retry_after(response, wait)
            if attempt < self.options.retries:
                time.sleep(wait)
        attempts = self.options.retries + 1
        if last.startswith("HTTP"):
            raise CalmRagError(f"the server at {self.base_url} kept failing ({last}) after {attempts} attempts")
        if self._answered:
            raise CalmRagError(f"the server at {self.base_url} stopped answering ({last}) after {attempts} attempts")
        raise CalmRagError(f"cannot reach a server at {self.base_url} ({last}); is it running, and is --base-url "
                           "its /v1 URL?")

    @staticmethod
    def _retry_after(response: httpx.Response, default: float) -> float:
        try:
            return min(max(float(response.headers.get("retry-after", "")), 0.0), _MAX_RETRY_AFTER_S)
        except ValueError:
            return default

    @staticmethod
    def _json(response: httpx.Response, url: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise CalmRagError(f"{url} answered with something other than JSON; is --base-url an "
                               "OpenAI-compatible /v1 URL?") from None
        if not isinstance(data, dict):
            raise CalmRagError(f"{url} answered with unexpected JSON ({type(data).__name__})")
        return data

    def _refusal(self, response: httpx.Response, url: str) -> CalmRagError:
        message, status = error_message(response), response.status_code
        if status in (401, 403):
            return CalmRagError(f"the server at {self.base_url} refused the request (HTTP {status}: {message}); "
                                "check --api-key")
        if status == 404 and "model" in message.lower():
            return CalmRagError(f"the server at {self.base_url} does not serve model {self.model!r} ({message}); "
                                "pass the served name as --model")
        if status == 404:
            return CalmRagError(f"{url} does not exist (HTTP 404); is --base-url the server's /v1 URL?")
        return CalmRagError(f"the server at {self.base_url} rejected the request (HTTP {status}: {message})")
