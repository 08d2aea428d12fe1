"""Field rules of the reference CRM's bodies (the contract's `ContactFields`, `CompanyFields`):
flat objects of strings, some nullable, some enums or RFC 3339 date-times, unknown fields
refused. The HTTP layer answers 422 with the message of the InvalidBody raised here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

# RFC 3339 date-time (JSON Schema's `format: date-time`); ranges are checked after matching.
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))"
)
STATUSES: tuple[str, ...] = ("active", "deactivated")


class InvalidBody(ValueError):
    """A body breaks its schema; the message says which field and why."""


def json_type(value: object) -> str:
    """The JSON type name of a decoded JSON value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def is_date_time(value: str) -> bool:
    """True if `value` is an RFC 3339 date-time with an offset, as the contract's format asks."""
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    if match.group(8) is not None and (int(match.group(9)) > 23 or int(match.group(10)) > 59):
        return False
    try:
        # RFC 3339 allows a leap second (60); datetime does not, so check the rest with 59.
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return second <= 60


def text_error(name: str, value: str) -> str | None:
    """A problem with a string value that JSON allows but SQLite's UTF-8 cannot store."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"field '{name}' is not valid Unicode text"
    return None


@dataclass(frozen=True)
class FieldRules:
    """The string fields of one body schema."""

    names: tuple[str, ...]
    nullable: frozenset[str] = frozenset()
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    date_times: frozenset[str] = frozenset({"source_updated_at"})

    def field_error(self, name: str, value: object) -> str | None:
        """What is wrong with `value` for field `name`, or None."""
        if value is None:
            if name in self.nullable:
                return None
            return f"field '{name}' must be a string, got null"
        if not isinstance(value, str):
            expected = "a string or null" if name in self.nullable else "a string"
            return f"field '{name}' must be {expected}, got {json_type(value)}"
        if (problem := text_error(name, value)) is not None:
            return problem
        allowed = self.enums.get(name)
        if allowed is not None and value not in allowed:
            return f"field '{name}' must be one of {list(allowed)}, got {value!r}"
        if name in self.date_times and not is_date_time(value):
            return f"field '{name}' must be an RFC 3339 date-time, got {value!r}"
        return None

    def validate(self, body: object, *, required: tuple[str, ...] = ()) -> dict[str, str | None]:
        """The body's fields, or InvalidBody naming every problem."""
        if not isinstance(body, dict):
            raise InvalidBody(f"body must be a JSON object, got {json_type(body)}")
        unknown = sorted(str(key) for key in body if key not in self.names)
        if unknown:
            raise InvalidBody(f"unknown field(s): {unknown}")
        problems = [
            error for name, value in body.items() if (error := self.field_error(name, value))
        ]
        missing = [name for name in required if name not in body]
        if missing:
            problems.append(f"missing required field(s): {missing}")
        if problems:
            raise InvalidBody("; ".join(problems))
        return dict(body)
