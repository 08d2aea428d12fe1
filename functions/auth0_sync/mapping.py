"""Field mapping: Auth0 attribute paths (dotted) -> CRM fields, and what a write contains.

A mapped attribute is written when it has a value, cleared (None) when the event shows it
removed: an explicit `null` or `""` in `data.object`, or present in `data.previous_object`
and gone from `data.object`. An attribute merely absent is kept by default (`keep`), or
cleared with `ABSENT_FIELDS=clear` for tenants whose `user.updated` is always the full
profile. A required CRM field (the email) is never cleared.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Any

from auth0_sync.errors import InvalidEvent

_MISSING = object()


class AbsentPolicy(StrEnum):
    KEEP = "keep"
    CLEAR = "clear"


def get_path(document: Mapping[str, Any] | None, path: str) -> Any:
    """Value at a dotted path (`user_metadata.company`), or None when any step is absent."""
    value = _lookup(document, path)
    return None if value is _MISSING else value


def _lookup(document: Mapping[str, Any] | None, path: str) -> Any:
    node: Any = document
    for step in path.split("."):
        if not isinstance(node, Mapping):
            return _MISSING
        node = node.get(step, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


def _text(value: Any, path: str) -> str | None:
    """A CRM field's value: text, or None for 'no value'; anything else is a bad event."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    raise InvalidEvent(
        f"detail.data.object.{path}: a {type(value).__name__} cannot be written to a CRM "
        "text field (map a text attribute)"
    )


def desired_fields(
    profile: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    mapping: Mapping[str, str],
    *,
    absent: AbsentPolicy = AbsentPolicy.KEEP,
    required: Collection[str] = (),
) -> dict[str, str | None]:
    """What the CRM should hold for each mapped field this event speaks about.

    A value means "set it", None means "clear it"; a field the event says nothing about is
    left out (so the CRM keeps it).
    """
    fields: dict[str, str | None] = {}
    for path, crm_field in mapping.items():
        raw = _lookup(profile, path)
        if raw is not _MISSING:
            value = _text(raw, path)
        elif previous is not None and _text_or_none(_lookup(previous, path)) is not None:
            value = None  # there before this change, gone now: removed in Auth0
        elif absent == AbsentPolicy.CLEAR:
            value = None
        else:
            continue
        if value is None and crm_field in required:
            continue  # the CRM cannot hold a contact without it: keep the last value
        fields[crm_field] = value
    return fields


def _text_or_none(value: Any) -> Any:
    return None if value is _MISSING or value is None or value == "" else value


def digest(value: Any) -> str:
    """A short stable digest of one written value: what the state remembers per field."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def digests(fields: Mapping[str, Any]) -> dict[str, str]:
    return {name: digest(value) for name, value in fields.items()}


def changed(desired: Mapping[str, Any], written: Mapping[str, str]) -> dict[str, Any]:
    """The fields whose desired value differs from what was last written."""
    return {name: value for name, value in desired.items() if written.get(name) != digest(value)}


def present_fields(profile: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """The mapped attributes that have a value, as a naive sync would send them."""
    fields: dict[str, Any] = {}
    for path, crm_field in mapping.items():
        value = get_path(profile, path)
        if value is not None and value != "":
            fields[crm_field] = value
    return fields
