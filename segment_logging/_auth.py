"""Credentials that never show themselves, and the redaction of any that a server echoes back.

``WriteKey`` holds a Segment write key; ``redact`` scrubs it (raw and base64
forms) and any ``Authorization``/``Basic``/``Bearer`` value from text that came
from the outside, such as an error body, before that text reaches a report.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

MASK = "********"
_MIN_SECRET = 4  # shorter "secrets" would mask ordinary words in a report

_SCHEME_VALUE = re.compile(r"(?i)\b(basic|bearer)(\s+)[A-Za-z0-9._~+/=-]+")
_HEADER_VALUE = re.compile(r"""(?i)(authorization["']?\s*[:=]\s*["']?)(?!basic\b|bearer\b)[^\s"',;}]+""")


class WriteKey:
    """A Segment write key that never shows itself in a repr, a str or a log line."""

    __slots__ = ("_header", "_secrets", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        token = base64.b64encode(f"{value}:".encode()).decode("ascii")
        self._header = f"Basic {token}"
        bare = base64.b64encode(value.encode()).decode("ascii")
        # Longest first, so a form containing another is masked whole.
        self._secrets = tuple(
            sorted({value, token, token.rstrip("="), bare, bare.rstrip("=")}, key=len)[::-1]
        )

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value: Basic auth, key as user name, empty password."""
        return self._header

    @property
    def value(self) -> str:
        """The key itself (sent in the body alongside an OAuth bearer token)."""
        return self._value

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every form of the key that must not appear in a report."""
        return self._secrets

    def __repr__(self) -> str:
        return f"WriteKey('{MASK}')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a WriteKey cannot be pickled")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` and every credential-looking value masked."""
    for secret in secrets:
        if len(secret) >= _MIN_SECRET:
            text = text.replace(secret, MASK)
    text = _SCHEME_VALUE.sub(rf"\1\2{MASK}", text)
    return _HEADER_VALUE.sub(rf"\1{MASK}", text)
