"""client_errors.py says how a request failed, as a WorkbenchError that names the value and the fix: every openai
SDK error (`TranslateErrors`, around each SDK call of a client.Client), and every HTTP error of vLLM's own routes read
through urllib (`http_text`: /tokenize, /metrics, /version). It sends nothing of its own.
"""

import json
import urllib.error
import urllib.request

from workbench.errors import EngineUnavailableError, ModelNotServedError, RequestRejectedError


class TranslateErrors:
    """Every openai SDK error becomes a WorkbenchError that names the value and the fix:
    no connection or a time-out → EngineUnavailableError; an HTTP error → RequestRejectedError with
    its status; an unknown model → ModelNotServedError listing the served names."""

    def __init__(self, client):
        self.client = client

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        import httpx

        openai, url = self.client._openai, self.client.base_url
        if exc is None or not isinstance(exc, Exception):
            return False
        if isinstance(exc, openai.APIStatusError):
            raise _rejected(
                self.client, exc.status_code, _detail(getattr(exc, "body", None), str(getattr(exc, "message", exc)))
            ) from exc
        if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError, httpx.TransportError)):
            raise EngineUnavailableError(
                f"the engine at {url} is not answering ({type(exc).__name__}: {exc}). Fix: start it with "
                "`workbench serve` (or the Engine tab's Start), or check the URL and port."
            ) from exc
        if isinstance(exc, openai.OpenAIError):
            raise RequestRejectedError(
                f"the engine at {url} sent an answer the openai SDK cannot read "
                f"({type(exc).__name__}: {exc}). Fix: check that the URL points at an "
                "OpenAI-compatible server such as vLLM.",
                0,
            ) from exc
        if isinstance(exc, OSError):
            raise EngineUnavailableError(
                f"the connection to {url} broke: {exc}. Fix: check that the engine is still running and restart it."
            ) from exc
        return False


def _detail(body, fallback: str) -> str:
    """The server's own words from an error body ({"error": {"message": ...}} or {"message": ...})."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    return fallback


def _rejected(client, status: int, detail: str) -> RequestRejectedError:
    url = client.base_url
    if status == 404 and "model" in detail.lower():
        try:
            served = [m.id for m in client.sdk.models.list().data]
        except Exception:  # noqa: BLE001 - the names are a courtesy; the 404 is the error
            served = []
        names = ", ".join(served) or "(could not list them)"
        return ModelNotServedError(
            f"model {client._model!r} is not served at {url}. Served: {names}. "
            "Fix: pass one of those names with --model, or omit --model to use the "
            "only one.",
            served,
        )
    if status == 401:
        fix = "pass the server's API key"
    elif status == 429 or status >= 500:
        fix = "the server is overloaded or failing; retry, and read its log if it persists"
    else:
        fix = "change the request as the server says"
    return RequestRejectedError(
        f"the engine at {url} refused the request (HTTP {status}): {detail}. Fix: {fix}.", status
    )


def http_text(client, request, timeout_s: float) -> str:
    """vLLM's own routes (/tokenize, /metrics) through urllib, with the SDK's error path: an HTTP error
    is a RequestRejectedError with its status, a dead server an EngineUnavailableError."""
    url = request if isinstance(request, str) else request.full_url
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read().decode()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        raise _rejected(client, exc.code, _detail(parsed, body.strip()[:300] or str(exc.reason))) from exc
    except OSError as exc:
        raise EngineUnavailableError(
            f"{url} failed: {exc}. Fix: check that the engine is running (`workbench models --url ...`)."
        ) from exc
