"""The webhook signature: HMAC-SHA256 over ``"<unix time>." + body``, sent as
``X-Driftwire-Signature: t=<unix time>,v1=<hex digest>``.

The timestamp is inside what is signed, so a receiver that refuses signatures older
than a few minutes cannot be fed a recorded request again (a replay); it deduplicates
redeliveries on the alert's own (``alert_id``, ``status``, ``severity``).

>>> sign(b"key", 1767225600, b'{"alert_id":"a1"}')
't=1767225600,v1=7e72718eb2e3e3fd9f20a3376a99c37d2bc20f43711bf9c50cd5715dbbd8c89f'
>>> verify(b"key", sign(b"key", 1767225600, b"{}"), b"{}", now=1767225660)
True
>>> verify(b"key", sign(b"key", 1767225600, b"{}"), b"{}", now=1767226000)
False
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Driftwire-Signature"
TOLERANCE_S = 300


def digest(key: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """The header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={digest(key, timestamp, body)}"


def verify(key: bytes, header: str, body: bytes, now: float, tolerance_s: float = TOLERANCE_S) -> bool:
    """What a receiver checks: the digest matches and the timestamp is recent (a reference for receivers)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(fields.get("v1", ""), digest(key, timestamp, body))
