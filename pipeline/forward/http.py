"""One HTTP POST and what its outcome means for a retry: accepted, worth retrying, or refused for good.

Standard library only (``urllib.request``): the forwarder sends a few requests a
second at most, so a connection pool would buy nothing. Redirects are not followed:
urllib would turn a redirected POST into a GET without its body and call that success.
"""

from __future__ import annotations

import contextlib
import email.utils
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

import msgspec

# Worth another attempt: the server is busy, restarting or timed the request out.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_BODY_MAX = 300


class Outcome(msgspec.Struct, frozen=True):
    ok: bool
    retryable: bool
    reason: str
    """``ok``, ``http_<status>``, ``timeout``, ``connection`` or ``tls``."""
    detail: str = ""
    retry_after: float | None = None


def classify(status: int) -> tuple[bool, bool]:
    """(accepted, worth retrying) for an HTTP status.

    >>> [classify(s) for s in (200, 202, 301, 400, 404, 408, 429, 500, 503)]
    [(True, False), (True, False), (False, False), (False, False), (False, False), (False, True), (False, True), \
(False, True), (False, True)]
    """
    return 200 <= status < 300, status in RETRYABLE_STATUS


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date).

    >>> retry_after("12"), retry_after(None), retry_after("soon")
    (12.0, None, None)
    >>> retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now=1767225600.0)
    60.0
    """
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


class Poster:
    """POSTs bodies to URLs with fixed headers and timeout; never raises for a failed request."""

    def __init__(self, timeout_s: float, context: ssl.SSLContext | None = None) -> None:
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=context))

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout_s) as resp:
                resp.read()
                ok, retryable = classify(resp.status)
                return Outcome(ok, retryable, "ok" if ok else f"http_{resp.status}")
        except urllib.error.HTTPError as exc:
            _, retryable = classify(exc.code)
            text = _body(exc)
            return Outcome(False, retryable, f"http_{exc.code}", f"HTTP {exc.code} from {url}: {text}",
                           retry_after(exc.headers.get("Retry-After") if exc.headers else None))
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            return _network_failure(url, exc)


def _body(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read()[:_BODY_MAX].decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _network_failure(url: str, exc: BaseException) -> Outcome:
    cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(cause, TimeoutError):
        return Outcome(False, True, "timeout", f"no answer from {url} in time")
    if isinstance(cause, ssl.SSLError):
        return Outcome(False, True, "tls", f"TLS with {url} failed: {cause}")
    return Outcome(False, True, "connection", f"cannot reach {url}: {cause}")
