"""Personal data stays out of logs, metrics and DLQ reasons: text from a CRM or from Auth0
is reduced before it is stored anywhere an operator reads."""

from __future__ import annotations

import re
from collections.abc import Iterable

# An address, also percent-encoded (a CRM may echo the query string it was sent).
_EMAIL = re.compile(r"[^\s@\"'<>(),;:&=?/]+(?:@|%40)[^\s@\"'<>(),;:&]+", re.IGNORECASE)
# E.164 and loosely written phone numbers: 7+ digits, maybe with + ( ) - . and spaces.
_PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
_BEARER = re.compile(r"(?i)(bearer|token|secret|password|api[_-]?key)([\s\"':=]+)[^\s\"',;]+")

MAX_DETAIL = 200


def redact(text: str, limit: int = MAX_DETAIL) -> str:
    """`text` with emails, phone numbers and credentials masked, and cut to `limit`."""
    masked = _BEARER.sub(r"\1\2***", text)
    masked = _EMAIL.sub("<email>", masked)
    masked = _PHONE.sub("<phone>", masked)
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"


def without_values(text: str, values: Iterable[object]) -> str:
    """`text` with each of the values we sent masked: a vendor that echoes a rejected value
    (one that is not even shaped like an email) must not put it into a log."""
    for value in sorted({str(v) for v in values if v is not None}, key=len, reverse=True):
        if len(value) >= 3:
            text = text.replace(value, "<value>")
    return text
