"""The one rule for showing an untrusted string to a person: alert messages, ``alerts tail`` and
``alerts show``, the HTML report and the logs all go through :func:`escape` (and names in
sentences through :func:`shown`), so a model or feature name cannot drive a terminal (ESC, OSC),
forge a second line (newline, U+2028), hide in a NUL or reorder what a reader sees (bidi
overrides and isolates, the "Trojan Source" characters).

Such characters are shown escaped, never dropped: ``\\x1b``, ``\\u202e``. Everything else,
backslashes included, is left as it was.

>>> escape("amount\\x1b]0;pwned\\x07")
'amount\\\\x1b]0;pwned\\\\x07'
>>> escape("abc\\u202edcba")
'abc\\\\u202edcba'
>>> escape("prix en €, 金额")
'prix en €, 金额'
>>> shown("x" * 100, limit=10)
'xxxxxxxxx…'
>>> shown("a\\nb")
'a\\\\nb'
>>> listed(["x", "y\\x1b", "z"], most=2)
'x, y\\\\x1b and 1 more'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NAME_LIMIT = 80
"""Characters of a name (after escaping) shown in a sentence; longer ones end in an ellipsis."""

# C0, DEL and C1 controls; the line and paragraph separators; bidi embeddings, overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _code(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def escape(text: str) -> str:
    """``text`` with control, line-separator and bidi-override characters shown as escapes."""
    return _UNSAFE.sub(_code, text) if _UNSAFE.search(text) else text


def shorten(text: str, limit: int = NAME_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def shown(name: str, limit: int = NAME_LIMIT) -> str:
    """A name as a sentence shows it: escaped, then shortened."""
    return shorten(escape(name[: limit * 6 + 1]), limit)  # no escape yields over 6 characters


def listed(names: Sequence[str], most: int) -> str:
    """Up to ``most`` names as a sentence shows them (each :func:`shown`), and how many more there are."""
    head = ", ".join(shown(str(n)) for n in names[:most])
    return head + (f" and {len(names) - most} more" if len(names) > most else "")
