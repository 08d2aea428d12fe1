"""Personal data stays out of logs, metrics and DLQ reasons: text from a CRM or from Auth0
is reduced before it is stored anywhere an operator reads.

The masks run in time linear in the text: a foreign text is cut to a window before any
pattern sees it, and no pattern has a nested quantifier or an unbounded one followed by
something that can fail, so no input makes the regex engine scan the rest of the text from
every position. A CRM error echoing a megabyte is reduced in about as long as it takes to copy it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_DETAIL = 200

# The longest text one mask can match (an address: a 64-character local part, quoted or
# with comments, and a 255-character domain; RFC 5321 section 4.5.3.1): the part of a cut
# text that may hold half of an address, and is therefore never shown.
_LONGEST = 640
# How much of a foreign text the masks look at: far more than is ever shown.
_WINDOW = 4096

_AT = r"(?:@|%40)"  # also percent-encoded: a CRM may echo the query string it was sent
_COMMENT = r"(?:\([^()\r\n]{0,62}\))?"  # john(work)@example.com (RFC 5322 section 3.2.2)
_QUOTED = r'"(?:[^"\\\r\n]|\\.){0,62}"'  # "first last"@example.com (RFC 5322 section 3.4.1)
_ATOM = r"[^\s@\"'<>(),;:&=?/]{1,64}"
_DOMAIN = r"[^\s@\"'<>(),;:&]{1,255}"
_MASKS = re.compile(
    "|".join(
        (
            # A credential: the name and separator stay, the value goes.
            r"(?P<name>(?:bearer|token|secret|password|api[_-]?key)[\s\"':=]{1,8})"
            r"[^\s\"',;]+",
            rf"(?P<email>{_COMMENT}(?:{_QUOTED}|{_ATOM}){_COMMENT}{_AT}{_COMMENT}{_DOMAIN})",
            # E.164 and loosely written phone numbers: 7+ digits, maybe with + ( ) - . spaces.
            r"(?P<phone>\+?\d[\d\s().-]{5,30}\d)",
        )
    ),
    re.IGNORECASE,
)


def redact(text: str, limit: int = MAX_DETAIL, *, sent: Iterable[object] = ()) -> str:
    """`text` with emails, phone numbers and credentials masked, and cut to `limit`.

    `sent`: the values we sent to whoever wrote `text`; a vendor that echoes a rejected
    value (a name is not shaped like anything a pattern finds) must not put it into a log.
    """
    text = without_values(text, sent)  # on the whole text: a long value cut in two stays
    cut = len(text) > _WINDOW
    window = text[:_WINDOW]
    shown_up_to = _WINDOW - _LONGEST if cut else len(window)
    pieces: list[str] = []
    done, size = 0, 0
    for match in _MASKS.finditer(window):
        if match.start() >= shown_up_to or size > limit:
            break
        kept = window[done : match.start()]
        mask = (
            match["name"] + "***" if match["name"] else "<email>" if match["email"] else "<phone>"
        )
        pieces += (kept, mask)
        size += len(kept) + len(mask)
        done = match.end()
    pieces.append(window[done:shown_up_to])
    masked = "".join(pieces)
    if cut or len(masked) > limit:
        return masked[: limit - 1] + "…"
    return masked


def without_values(text: str, values: Iterable[object]) -> str:
    """`text` with each of the values we sent masked (linear: one scan per value)."""
    for value in sorted({str(v) for v in values if v is not None}, key=len, reverse=True):
        if len(value) >= 3:
            text = text.replace(value, "<value>")
    return text
